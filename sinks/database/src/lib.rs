//! Database sink: SQLite, PostgreSQL, MariaDB/MySQL through sqlx
