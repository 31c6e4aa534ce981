-- voiceauth session store, PostgreSQL. Times are Unix microseconds (0 = none)
-- so both backends share every query. Columns ending in _sealed hold
-- AES-256-GCM ciphertext; columns ending in _hmac hold keyed hashes.
CREATE TABLE calls (
	id           TEXT PRIMARY KEY,
	version      BIGINT NOT NULL,
	state_sealed BYTEA NOT NULL,
	ended        BOOLEAN NOT NULL DEFAULT FALSE,
	created_at   BIGINT NOT NULL,
	updated_at   BIGINT NOT NULL
);
CREATE INDEX calls_updated_at ON calls (updated_at);

CREATE TABLE call_tokens (
	call_id       TEXT PRIMARY KEY,
	tokens_sealed BYTEA NOT NULL,
	updated_at    BIGINT NOT NULL
);

CREATE TABLE records (
	kind        TEXT NOT NULL,
	key         TEXT NOT NULL,
	version     BIGINT NOT NULL,
	data_sealed BYTEA NOT NULL,
	expires_at  BIGINT NOT NULL,
	PRIMARY KEY (kind, key)
);
CREATE INDEX records_expires_at ON records (expires_at) WHERE expires_at <> 0;

CREATE TABLE events (
	id  BIGSERIAL PRIMARY KEY,
	key TEXT NOT NULL,
	at  BIGINT NOT NULL
);
CREATE INDEX events_key_at ON events (key, at);
CREATE INDEX events_at ON events (at);

CREATE TABLE patients (
	id             TEXT PRIMARY KEY,
	profile_sealed BYTEA NOT NULL,
	dob_hmac       BYTEA NOT NULL,
	ssn4_hmac      BYTEA NOT NULL
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
	jwk        BYTEA NOT NULL,
	pinned_at  BIGINT NOT NULL,
	updated_at BIGINT NOT NULL
);

CREATE TABLE audit_log (
	seq       BIGINT PRIMARY KEY,
	at        BIGINT NOT NULL,
	type      TEXT NOT NULL,
	actor     TEXT NOT NULL,
	subject   TEXT NOT NULL,
	number    TEXT NOT NULL,
	call_ref  TEXT NOT NULL,
	outcome   TEXT NOT NULL,
	detail    TEXT NOT NULL,
	prev_hash BYTEA,
	hash      BYTEA NOT NULL
);
CREATE INDEX audit_log_subject ON audit_log (subject, seq);
CREATE INDEX audit_log_at ON audit_log (at);
CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	RAISE EXCEPTION 'audit_log is append-only';
END
$$;
CREATE TRIGGER audit_log_append_only BEFORE UPDATE ON audit_log
	FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();

-- The chain head: AppendAudit locks this row (SELECT ... FOR UPDATE), so
-- appends from several instances form one chain.
CREATE TABLE audit_head (
	id   INTEGER PRIMARY KEY CHECK (id = 1),
	seq  BIGINT NOT NULL,
	hash BYTEA
);
INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, NULL);
