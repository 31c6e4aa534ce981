-- RFC 8693 subject tokens already exchanged, by keyed (issuer, jti): a token
-- is refused a second time until its own exp has passed. key is a hash made
-- by the caller; nothing here names a patient.
CREATE TABLE exchange_jtis (
	key        TEXT   NOT NULL PRIMARY KEY,
	expires_at BIGINT NOT NULL
);
CREATE INDEX exchange_jtis_expires ON exchange_jtis (expires_at);
