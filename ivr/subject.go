package ivr

import (
	"context"
	"encoding/json"
	"errors"
	"mime"
	"net/http"
	"slices"
)

// HostPolicy says which clients may register subject tokens: the AS
// authenticates a client, this decides whether that client is a host. One
// method, so a client registry with a "host" kind can replace the list.
type HostPolicy interface {
	IsHost(clientID string) bool
}

// HostList is a configured allow-list of host client ids.
type HostList []string

// IsHost implements HostPolicy.
func (l HostList) IsHost(clientID string) bool { return clientID != "" && slices.Contains(l, clientID) }

// handleSubjectToken registers a token for a call before the host connects
// it (ARCHITECTURE.md Decisions): Basic auth carries the host's client
// credentials at the AS; the body carries subject_token and
// subject_token_type as a form or JSON. Tokens never travel through Twilio.
//
// Only for a call not yet seen, once: a registration for a call that exists
// (in any state) would swap its caller onto another patient, so it gets 409
// and nothing changes. Only clients the HostPolicy names are hosts; any
// other client, however well it authenticates, gets the same 401 as a
// wrong secret.
func (s *Server) handleSubjectToken(w http.ResponseWriter, r *http.Request) {
	sid := r.PathValue("CallSid")
	clientID, secret, ok := r.BasicAuth()
	if !ok || clientID == "" || s.cfg.Hosts == nil || !s.cfg.Hosts.IsHost(clientID) {
		if ok && clientID != "" {
			s.log.Warn("subject token: not a host", "call", s.pseudo("call", sid))
		}
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
	if err := s.claimForHost(r.Context(), sid); err != nil {
		if errors.Is(err, errClaimStore) {
			writeOAuthErrorDesc(w, http.StatusServiceUnavailable, "temporarily_unavailable", err.Error())
		} else {
			writeOAuthErrorDesc(w, http.StatusConflict, "invalid_request", err.Error())
		}
		return
	}
	err = s.cfg.Auth.RegisterSubjectToken(r.Context(), sid, clientID, secret, body.SubjectToken, body.SubjectTokenType)
	ctx := context.WithoutCancel(r.Context())
	if err != nil {
		// Nothing was registered: a host may try again.
		if _, cerr := s.finishHost(ctx, sid, claimReleased); cerr != nil {
			s.log.Error("subject token claim", "call", s.pseudo("call", sid), "err", errKind(cerr))
		}
	} else if won, cerr := s.finishHost(ctx, sid, claimHost); !won {
		// The call arrived and stopped waiting for this registration (or the
		// claim cannot be read): undo it, the call goes on without it.
		s.log.Warn("subject token: the call came first", "call", s.pseudo("call", sid), "err", errKind(cerr))
		if eerr := s.cfg.Auth.EndCall(ctx, sid); eerr != nil {
			s.log.Error("subject token undo", "call", s.pseudo("call", sid), "err", errKind(eerr))
		}
		if cerr != nil {
			writeOAuthErrorDesc(w, http.StatusServiceUnavailable, "temporarily_unavailable", errClaimStore.Error())
		} else {
			writeOAuthErrorDesc(w, http.StatusConflict, "invalid_request", errCallExists.Error())
		}
		return
	}
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
	writeOAuthErrorDesc(w, status, code, "")
}

func writeOAuthErrorDesc(w http.ResponseWriter, status int, code, desc string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	body := map[string]string{"error": code}
	if desc != "" {
		body["error_description"] = desc
	}
	_ = json.NewEncoder(w).Encode(body)
}
