"""UI errors are pages: a bad query parameter names its field as the API would."""

from __future__ import annotations

from fastapi.testclient import TestClient


def test_a_bad_query_parameter_is_a_400_page_naming_the_field(client: TestClient) -> None:
    response = client.get("/ui/prompts?page=two")
    assert response.status_code == 400
    assert response.headers["content-type"].startswith("text/html")
    # The one conversion of pydantic's issues (common.handlers.validation_error), as the API's
    # fieldErrors: the field by its name without the "query." prefix, pydantic's message.
    assert "Invalid input data" in response.text
    assert "<code>page</code>: Input should be a valid integer" in response.text
