package ivr

import (
	"encoding/json"
	"errors"
	"mime"
	"net/http"
)

// handleSubjectToken registers a token for a call before the host connects
// it (ARCHITECTURE.md Decisions): Basic auth carries the host's client
// credentials at the AS; the body carries subject_token and
// subject_token_type as a form or JSON. Tokens never travel through Twilio.
func (s *Server) handleSubjectToken(w http.ResponseWriter, r *http.Request) {
	sid := r.PathValue("CallSid")
	clientID, secret, ok := r.BasicAuth()
	if !ok || clientID == "" {
		w.Header().Set("WWW-Authenticate", `Basic realm="voiceauth"`)
		writeOAuthError(w, http.StatusUnauthorized, "invalid_client")
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxBody)
	var body struct {
		SubjectToken     string `json:"subject_token"`
		SubjectTokenType string `json:"subject_token_type"`
	}
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	var err error
	if ct == "application/json" {
		err = json.NewDecoder(r.Body).Decode(&body)
	} else if err = r.ParseForm(); err == nil {
		body.SubjectToken, body.SubjectTokenType = r.PostForm.Get("subject_token"), r.PostForm.Get("subject_token_type")
	}
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		writeOAuthError(w, http.StatusRequestEntityTooLarge, "invalid_request")
		return
	case err != nil || sid == "" || body.SubjectToken == "" || body.SubjectTokenType == "":
		writeOAuthError(w, http.StatusBadRequest, "invalid_request")
		return
	}
	err = s.cfg.Auth.RegisterSubjectToken(r.Context(), sid, clientID, secret, body.SubjectToken, body.SubjectTokenType)
	switch {
	case err == nil:
		s.log.Info("subject token", "call", s.pseudo("call", sid), "host", clientID)
		w.WriteHeader(http.StatusNoContent)
	case errors.Is(err, ErrUnauthorizedHost):
		w.Header().Set("WWW-Authenticate", `Basic realm="voiceauth"`)
		writeOAuthError(w, http.StatusUnauthorized, "invalid_client")
	case errors.Is(err, ErrRejected):
		writeOAuthError(w, http.StatusBadRequest, "invalid_grant")
	default:
		s.log.Warn("subject token", "call", s.pseudo("call", sid), "err", errKind(err))
		writeOAuthError(w, http.StatusBadGateway, "temporarily_unavailable")
	}
}

func writeOAuthError(w http.ResponseWriter, status int, code string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": code})
}
