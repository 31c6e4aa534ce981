-- The client registry of the authorization server (`voiceauth clients …`),
-- shared by every instance on this store. The store knows only the id and
-- the kind; secret hashes and keys live in data_sealed, opaque to it.
CREATE TABLE clients (
	id          TEXT PRIMARY KEY,
	kind        TEXT NOT NULL,
	version     BIGINT NOT NULL,
	data_sealed BYTEA NOT NULL,
	created_at  BIGINT NOT NULL,
	updated_at  BIGINT NOT NULL
);
