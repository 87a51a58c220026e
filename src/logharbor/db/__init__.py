"""The database: engine and transactions, every table, and the migrations."""
