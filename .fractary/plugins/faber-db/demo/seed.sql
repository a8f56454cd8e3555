-- The demo database of faber-db's quick start (dev.sqlite3 beside this file was made from it with
-- `python3 -c "import sqlite3; sqlite3.connect('dev.sqlite3').executescript(open('seed.sql').read())"`).
CREATE TABLE _sqlx_migrations (
    version BIGINT PRIMARY KEY,
    description TEXT NOT NULL,
    installed_on TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    success BOOLEAN NOT NULL,
    checksum BLOB NOT NULL,
    execution_time BIGINT NOT NULL
);
INSERT INTO _sqlx_migrations (version, description, installed_on, success, checksum, execution_time) VALUES
    (20250110090000, 'create users', '2025-01-10 09:00:00', 1, x'00', 3),
    (20250115120000, 'create projects', '2025-01-15 12:00:00', 1, x'00', 4),
    (20250124140000, 'add project status', '2025-01-24 14:00:00', 1, x'00', 2);

CREATE TABLE users (
    id INTEGER PRIMARY KEY,
    email TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    created_at TEXT NOT NULL
);
INSERT INTO users (email, name, created_at) VALUES
    ('ada@example.com', 'Ada Lovelace', '2025-01-10T09:05:00Z'),
    ('grace@example.com', 'Grace Hopper', '2025-01-11T10:00:00Z'),
    ('edsger@example.com', 'Edsger Dijkstra', '2025-01-12T11:30:00Z');

CREATE TABLE projects (
    id INTEGER PRIMARY KEY,
    owner_id INTEGER NOT NULL REFERENCES users(id),
    name TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'active'
);
INSERT INTO projects (owner_id, name, status) VALUES
    (1, 'Analytical Engine notes', 'active'),
    (2, 'COBOL compiler', 'archived'),
    (3, 'Shortest paths', 'active'),
    (3, 'Semaphores', 'active');

CREATE INDEX projects_owner ON projects(owner_id);
