package twiliotest

import (
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"net/url"
	"sort"
	"strings"
)

// Sign computes Twilio's X-Twilio-Signature: base64(HMAC-SHA1(authToken,
// fullURL + the POST parameters sorted by name, each name immediately followed
// by its value)). fullURL is exactly the URL Twilio requested, query included.
// For repeated names the distinct values are sorted and each appended (Twilio's Node and
// Python behaviour). A websocket upgrade is signed with params == nil.
func Sign(authToken, fullURL string, params url.Values) string {
	var b strings.Builder
	b.WriteString(fullURL)
	keys := make([]string, 0, len(params))
	for k := range params {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		vs := append([]string(nil), params[k]...)
		sort.Strings(vs)
		for i, v := range vs {
			if i > 0 && v == vs[i-1] {
				continue // Node and Python sign the de-duplicated values
			}
			b.WriteString(k)
			b.WriteString(v)
		}
	}
	mac := hmac.New(sha1.New, []byte(authToken))
	mac.Write([]byte(b.String()))
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}
