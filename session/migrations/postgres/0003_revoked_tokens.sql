-- Access tokens revoked at the authorization server (hang-up, refresh or
-- code reuse, RFC 7009), by jti. Resource servers that verify tokens
-- locally look here on every request. expires_at is when the token itself
-- expires; rows are purged some time after that.
CREATE TABLE revoked_tokens (
	jti        TEXT PRIMARY KEY,
	expires_at BIGINT NOT NULL
);
CREATE INDEX revoked_tokens_expires_at ON revoked_tokens (expires_at);
