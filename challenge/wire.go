package challenge

// Wire types shared by the client in this package and by the reference
// authorization server (authserver imports them; nothing else in this file
// has behaviour).

// ASMetadata is RFC 8414 authorization server metadata plus the FiPA and
// voice-KBA-profile fields.
type ASMetadata struct {
	Issuer                            string   `json:"issuer"`
	AuthorizationChallengeEndpoint    string   `json:"authorization_challenge_endpoint,omitempty"`
	TokenEndpoint                     string   `json:"token_endpoint"`
	JWKSURI                           string   `json:"jwks_uri,omitempty"`
	IntrospectionEndpoint             string   `json:"introspection_endpoint,omitempty"`
	RevocationEndpoint                string   `json:"revocation_endpoint,omitempty"`
	ScopesSupported                   []string `json:"scopes_supported,omitempty"`
	ResponseTypesSupported            []string `json:"response_types_supported,omitempty"`
	GrantTypesSupported               []string `json:"grant_types_supported,omitempty"`
	CodeChallengeMethodsSupported     []string `json:"code_challenge_methods_supported,omitempty"`
	TokenEndpointAuthMethodsSupported []string `json:"token_endpoint_auth_methods_supported,omitempty"`
	TokenEndpointAuthSigningAlgs      []string `json:"token_endpoint_auth_signing_alg_values_supported,omitempty"`
	KBAFieldsSupported                []string `json:"authorization_challenge_kba_fields_supported,omitempty"`
	ACRValuesSupported                []string `json:"acr_values_supported,omitempty"`
	AuthorizationResponseISSSupported bool     `json:"authorization_response_iss_parameter_supported,omitempty"`
}

// ProtectedResourceMetadata is RFC 9728 metadata served by an MCP server.
type ProtectedResourceMetadata struct {
	Resource               string   `json:"resource"`
	AuthorizationServers   []string `json:"authorization_servers,omitempty"`
	ScopesSupported        []string `json:"scopes_supported,omitempty"`
	BearerMethodsSupported []string `json:"bearer_methods_supported,omitempty"`
	ResourceName           string   `json:"resource_name,omitempty"`
}

// ErrorResponse is the JSON body of an OAuth / FiPA error, with the voice
// KBA profile's hints.
type ErrorResponse struct {
	Error            string   `json:"error"`
	ErrorDescription string   `json:"error_description,omitempty"`
	AuthSession      string   `json:"auth_session,omitempty"`
	KBARequired      []string `json:"kba_required,omitempty"`
	KBARetry         bool     `json:"kba_retry,omitempty"`
	OTPRequired      bool     `json:"otp_required,omitempty"`
	OTPRetry         bool     `json:"otp_retry,omitempty"`
	RequestURI       string   `json:"request_uri,omitempty"`
	ExpiresIn        int      `json:"expires_in,omitempty"`
	// Iss (RFC 9207) is checked by the client when an AS sends it with an
	// error; the reference AS names itself on codes only.
	Iss string `json:"iss,omitempty"`
}

// ChallengeSuccess is the 200 body of the authorization challenge endpoint.
type ChallengeSuccess struct {
	AuthorizationCode string `json:"authorization_code"`
	Iss               string `json:"iss,omitempty"` // RFC 9207: the issuer that issued the code
}

// TokenResponse is the 200 body of the token endpoint (RFC 6749 §5.1, RFC 8693 §2.2.1).
type TokenResponse struct {
	AccessToken     string `json:"access_token"`
	TokenType       string `json:"token_type"`
	ExpiresIn       int    `json:"expires_in,omitempty"`
	RefreshToken    string `json:"refresh_token,omitempty"`
	Scope           string `json:"scope,omitempty"`
	IssuedTokenType string `json:"issued_token_type,omitempty"`
}

// Wire names of the voice KBA profile's request fields.
const (
	FieldName        = "kba_name"
	FieldBirthdate   = "kba_birthdate"
	FieldSSNLast4    = "kba_ssn_last4"
	FieldOTP         = "otp"
	FieldOTPResend   = "otp_resend"
	FieldCallerPhone = "caller_phone"
	FieldStirVerstat = "stir_verstat"
	FieldCallRef     = "call_ref"
	FieldAuthSession = "auth_session"
)

// Error codes of FiPA, RFC 6749, RFC 8707, RFC 6750 and RFC 9470 that the profile uses.
const (
	ErrInsufficientAuthorization      = "insufficient_authorization"
	ErrInvalidSession                 = "invalid_session"
	ErrRedirectToWeb                  = "redirect_to_web"
	ErrAccessDenied                   = "access_denied"
	ErrInvalidRequest                 = "invalid_request"
	ErrInvalidClient                  = "invalid_client"
	ErrInvalidGrant                   = "invalid_grant"
	ErrUnauthorizedClient             = "unauthorized_client"
	ErrUnsupportedGrantType           = "unsupported_grant_type"
	ErrUnsupportedResponseType        = "unsupported_response_type"
	ErrInvalidScope                   = "invalid_scope"
	ErrInvalidTarget                  = "invalid_target"
	ErrInsufficientScope              = "insufficient_scope"
	ErrInsufficientUserAuthentication = "insufficient_user_authentication"
	ErrInvalidToken                   = "invalid_token"
)

// Token type identifiers of RFC 8693 §3.
const (
	TokenTypeAccessToken   = "urn:ietf:params:oauth:token-type:access_token"
	TokenTypeJWT           = "urn:ietf:params:oauth:token-type:jwt"
	TokenTypeIDToken       = "urn:ietf:params:oauth:token-type:id_token"
	GrantTypeTokenExchange = "urn:ietf:params:oauth:grant-type:token-exchange"
)

// Assurance levels of the profile.
const (
	ACRKBA    = "urn:voiceauth:acr:kba"
	ACRKBAOTP = "urn:voiceauth:acr:kba-otp"
)
