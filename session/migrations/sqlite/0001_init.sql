-- voiceauth session store, SQLite. Times are Unix microseconds (0 = none).
-- Columns ending in _sealed hold AES-256-GCM ciphertext (see sealer.go);
-- columns ending in _hmac hold keyed hashes. Nothing else may hold a secret.
CREATE TABLE calls (
	id           TEXT PRIMARY KEY,
	version      INTEGER NOT NULL,
	state_sealed BLOB NOT NULL,
	ended        INTEGER NOT NULL DEFAULT 0,
	created_at   INTEGER NOT NULL,
	updated_at   INTEGER NOT NULL
);
CREATE INDEX calls_updated_at ON calls (updated_at);

CREATE TABLE call_tokens (
	call_id       TEXT PRIMARY KEY,
	tokens_sealed BLOB NOT NULL,
	updated_at    INTEGER NOT NULL
);

CREATE TABLE records (
	kind        TEXT NOT NULL,
	key         TEXT NOT NULL,
	version     INTEGER NOT NULL,
	data_sealed BLOB NOT NULL,
	expires_at  INTEGER NOT NULL,
	PRIMARY KEY (kind, key)
);
CREATE INDEX records_expires_at ON records (expires_at) WHERE expires_at <> 0;

CREATE TABLE events (
	id  INTEGER PRIMARY KEY,
	key TEXT NOT NULL,
	at  INTEGER NOT NULL
);
CREATE INDEX events_key_at ON events (key, at);
CREATE INDEX events_at ON events (at);

CREATE TABLE patients (
	id             TEXT PRIMARY KEY,
	profile_sealed BLOB NOT NULL,
	dob_hmac       BLOB NOT NULL,
	ssn4_hmac      BLOB NOT NULL
);

CREATE TABLE patient_name_keys (
	name_key   TEXT NOT NULL,
	patient_id TEXT NOT NULL REFERENCES patients (id) ON DELETE CASCADE,
	PRIMARY KEY (name_key, patient_id)
);
CREATE INDEX patient_name_keys_patient ON patient_name_keys (patient_id);

CREATE TABLE mcp_pins (
	server     TEXT PRIMARY KEY,
	key_id     TEXT NOT NULL,
	thumbprint TEXT NOT NULL,
	jwk        BLOB NOT NULL,
	pinned_at  INTEGER NOT NULL,
	updated_at INTEGER NOT NULL
);

CREATE TABLE audit_log (
	seq       INTEGER PRIMARY KEY,
	at        INTEGER NOT NULL,
	type      TEXT NOT NULL,
	actor     TEXT NOT NULL,
	subject   TEXT NOT NULL,
	number    TEXT NOT NULL,
	call_ref  TEXT NOT NULL,
	outcome   TEXT NOT NULL,
	detail    TEXT NOT NULL,
	prev_hash BLOB,
	hash      BLOB NOT NULL
);
CREATE INDEX audit_log_subject ON audit_log (subject, seq);
CREATE INDEX audit_log_at ON audit_log (at);
CREATE TRIGGER audit_log_append_only BEFORE UPDATE ON audit_log
BEGIN
	SELECT RAISE(ABORT, 'audit_log is append-only');
END;

-- The chain head: AppendAudit takes the write lock on this row, so appends
-- from any number of writers form one chain; VerifyAudit compares the tail
-- with it to notice deleted tail records.
CREATE TABLE audit_head (
	id   INTEGER PRIMARY KEY CHECK (id = 1),
	seq  INTEGER NOT NULL,
	hash BLOB
);
INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, NULL);
