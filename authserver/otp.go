package authserver

import (
	"bufio"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"net/url"
	"os"
	"sync"
	"time"

	"github.com/voiceauth/voiceauth/session"
)

// OTPChannel delivers and checks one-time codes. Either the AS generates the
// code (OutboxChannel, TwilioMessaging: 6 digits from crypto/rand, stored
// hashed, single use) or the provider does (TwilioVerify). The AS enforces
// its own check and send limits on top of any channel.
type OTPChannel interface {
	// Send delivers a fresh code to the E.164 number and returns an opaque
	// reference for Check.
	Send(ctx context.Context, to string) (ref string, err error)
	// Check reports whether code is the live code for ref; a correct code is
	// consumed.
	Check(ctx context.Context, ref, code string) (bool, error)
}

// codeBook stores AS-generated codes in the session store, hashed with a
// per-code salt, valid TTL, single use.
type codeBook struct {
	Store Store
	TTL   time.Duration
	Now   func() time.Time
}

type otpRecord struct {
	Salt []byte    `json:"s"`
	Hash []byte    `json:"h"`
	Exp  time.Time `json:"e"`
	Used bool      `json:"u"`
}

const kindOTP = "otp"

func (b codeBook) now() time.Time {
	if b.Now != nil {
		return b.Now()
	}
	return time.Now()
}

func (b codeBook) ttl() time.Duration {
	if b.TTL > 0 {
		return b.TTL
	}
	return 10 * time.Minute
}

func codeHash(salt []byte, code string) []byte {
	m := hmac.New(sha256.New, salt)
	m.Write([]byte(code))
	return m.Sum(nil)
}

// newCode makes a code and its reference and stores the hash.
func (b codeBook) newCode(ctx context.Context) (ref, code string, err error) {
	if b.Store == nil {
		return "", "", errors.New("authserver: OTP channel has no Store")
	}
	n, err := rand.Int(rand.Reader, big.NewInt(1_000_000))
	if err != nil {
		return "", "", err
	}
	code = fmt.Sprintf("%06d", n.Int64())
	ref = randomToken(24)
	salt := make([]byte, 16)
	rand.Read(salt)
	exp := b.now().Add(b.ttl())
	data, _ := json.Marshal(otpRecord{Salt: salt, Hash: codeHash(salt, code), Exp: exp})
	err = b.Store.PutRecord(ctx, &session.Record{Kind: kindOTP, Key: hashKey(ref), Data: data, ExpiresAt: exp})
	return ref, code, err
}

func (b codeBook) check(ctx context.Context, ref, code string) (bool, error) {
	if b.Store == nil {
		return false, errors.New("authserver: OTP channel has no Store")
	}
	rec, err := b.Store.GetRecord(ctx, kindOTP, hashKey(ref))
	if errors.Is(err, session.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	var o otpRecord
	if json.Unmarshal(rec.Data, &o) != nil {
		return false, nil
	}
	ok := subtle.ConstantTimeCompare(codeHash(o.Salt, code), o.Hash) == 1
	if !ok || o.Used || !b.now().Before(o.Exp) {
		return false, nil
	}
	o.Used = true
	rec.Data, _ = json.Marshal(o)
	if err := b.Store.UpdateRecord(ctx, rec); err != nil {
		if errors.Is(err, session.ErrConflict) {
			return false, nil // someone else consumed it
		}
		return false, err
	}
	return true, nil
}

// OutboxChannel is the embedded default: the code is appended as one JSON
// line {"time","to","code"} to Path (the fake SMS device; the one place a
// code is ever written) and checked against its stored hash.
type OutboxChannel struct {
	Path  string
	Store Store
	TTL   time.Duration
	Now   func() time.Time

	mu sync.Mutex
}

type outboxLine struct {
	Time string `json:"time"`
	To   string `json:"to"`
	Code string `json:"code"`
}

// Send implements OTPChannel.
func (o *OutboxChannel) Send(ctx context.Context, to string) (string, error) {
	b := codeBook{Store: o.Store, TTL: o.TTL, Now: o.Now}
	ref, code, err := b.newCode(ctx)
	if err != nil {
		return "", err
	}
	line, _ := json.Marshal(outboxLine{Time: b.now().UTC().Format(time.RFC3339), To: to, Code: code})
	o.mu.Lock()
	defer o.mu.Unlock()
	f, err := os.OpenFile(o.Path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return "", fmt.Errorf("authserver: outbox: %w", err)
	}
	_, err = f.Write(append(line, '\n'))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", fmt.Errorf("authserver: outbox: %w", err)
	}
	return ref, nil
}

// Check implements OTPChannel.
func (o *OutboxChannel) Check(ctx context.Context, ref, code string) (bool, error) {
	return codeBook{Store: o.Store, TTL: o.TTL, Now: o.Now}.check(ctx, ref, code)
}

// LatestOutboxCode returns the newest code written to the outbox for phone
// (any phone when phone is ""). For `voiceauth otp-outbox`.
func LatestOutboxCode(path, phone string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	var code string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var l outboxLine
		if json.Unmarshal(sc.Bytes(), &l) != nil {
			continue
		}
		if phone == "" || l.To == phone {
			code = l.Code
		}
	}
	if err := sc.Err(); err != nil {
		return "", err
	}
	if code == "" {
		return "", errors.New("authserver: no code in the outbox for that number")
	}
	return code, nil
}

// redactURLError keeps the transport error but not the request it carried.
func redactURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}
