package healthmcp

import (
	"bytes"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"
	segjson "github.com/segmentio/encoding/json"
)

// sdkUnmarshal is the SDK v1.8.0's JSON decoder (internal/json.Unmarshal):
// segmentio/encoding/json with case-insensitive field matching switched off.
// Its 1000-level depth check is not repeated: the gate refuses depth > 64.
func sdkUnmarshal(data []byte, v any) error {
	dec := segjson.NewDecoder(bytes.NewReader(data))
	dec.DontMatchCaseInsensitiveStructFields()
	return dec.Decode(v)
}

// sdkReading is what the SDK dispatches on for one POST body: readBatch
// (mcp/transport.go), jsonrpc.DecodeMessage, then for tools/call the params
// decoded into CallToolParamsRaw (mcp/shared.go unmarshalParams).
type sdkReading struct {
	batch  bool
	method string
	tool   string
	err    error
}

func sdkRead(body []byte) sdkReading {
	var raw []segjson.RawMessage
	if sdkUnmarshal(body, &raw) == nil {
		return sdkReading{batch: true}
	}
	msg, err := jsonrpc.DecodeMessage(body)
	if err != nil {
		return sdkReading{err: err}
	}
	req, ok := msg.(*jsonrpc.Request)
	if !ok {
		return sdkReading{}
	}
	r := sdkReading{method: req.Method}
	if req.Method == "tools/call" && req.Params != nil {
		var p *mcp.CallToolParamsRaw
		if err := sdkUnmarshal(req.Params, &p); err != nil {
			return sdkReading{err: err}
		}
		if p != nil {
			r.tool = p.Name
		}
	}
	return r
}

// gateSeeds are the bodies of the regression tests plus ordinary traffic.
var gateSeeds = []string{
	`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"list_appointments","arguments":{}}}`,
	`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"request_refill","arguments":{"medication_id":"rx-1"}}}`,
	`{"jsonrpc":"2.0","id":"a","method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"x","version":"1"}}}`,
	`{"jsonrpc":"2.0","method":"notifications/initialized","params":{}}`,
	`{"jsonrpc":"2.0","id":3,"result":{}}`,
	`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"Name":"list_appointments","name":"list_medications"}}`,
	`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"list_medications","Name":"list_appointments"}}`,
	`{"jsonrpc":"2.0","id":1,"Method":"tools/call","method":"tools/call","params":{"name":"list_medications"}}`,
	`{"jsonrpc":"2.0","id":1,"method":"ping","Method":"tools/call","params":{"name":"list_medications"}}`,
	`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"list_appointments","name":"list_medications"}}`,
	`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"list_medications","arguments":[1]}}`,
	`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"list_medications"}}{"x":1}`,
	`[{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"list_medications"}}]`,
	`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"n\u0061me":"list_medications","name":"list_appointments"}}`,
	"\xef\xbb\xbf{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{\"name\":\"list_medications\"}}",
	`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"list_medications","arguments":{"a":{"b":1,"B":2}}}}`,
	`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"list_medications\ud800"}}`,
	`{"jsonrpc":"2.0","id":1.5,"method":"tools/call","params":{"name":"list_medications"}}`,
	`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"list_\u006dedications"}}`,
	`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"n\u0061me":"list_medications","arguments":{}}}`,
	`{"jsonrpc":"2.0","id":1,"m\u0065thod":"tools/call","params":{"name":"list_medications"}}`,
	`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"list_medications","arguments":null}}`,
	`{"jsonrpc":"2.0","id":-0,"method":"tools/call","params":{"name":"a\u0000b","_meta":{"progressToken":1e3}}}`,
	` {"jsonrpc" : "2.0", "id" : "x\/y", "method" : "tools/call", "params" : {"name" : "list_appointments"}} `,
}

// FuzzGateReading: whenever the gate accepts a body, the SDK reads the same
// (method, tool name) from the client's bytes and from the bytes the gate
// passes on, and rejects neither; and the gate's reading is a fixed point.
func FuzzGateReading(f *testing.F) {
	for _, s := range gateSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(checkGateReading)
}

// FuzzGateReadingShaped reaches deeper than random bytes: the fuzzer picks
// the member names (raw text between the quotes) and values (raw JSON text)
// of a tools/call envelope, plus bytes before and after it.
func FuzzGateReadingShaped(f *testing.F) {
	f.Add("", "method", `"tools/call"`, "name", `"list_medications"`, "Name", `"list_appointments"`, "")
	f.Add("", "Method", `"ping"`, "name", `"list_medications"`, "arguments", `{}`, "")
	f.Add("", "method", `"tools/call"`, "n\\u0061me", `"list_medications"`, "name", `"list_appointments"`, "")
	f.Add("", "method", `"tools/call"`, "name", `"list_medications"`, "arguments", `[]`, "x")
	f.Add(" ", "method", `"tools/call"`, "name", `"list_\\u006dedications"`, "_meta", `{"a":1}`, "\n")
	f.Fuzz(func(t *testing.T, pre, mkey, mval, k1, v1, k2, v2, post string) {
		body := pre + `{"jsonrpc":"2.0","id":1,"` + mkey + `":` + mval + `,"params":{"` + k1 + `":` + v1 + `,"` + k2 + `":` + v2 + `}}` + post
		checkGateReading(t, []byte(body))
	})
}

// checkGateReading is the property both fuzz targets hold.
func checkGateReading(t *testing.T, body []byte) {
	m, err := readRPC(body)
	if err != nil {
		if !isBodyErr(err) {
			t.Fatalf("refusal %v is not a body error", err)
		}
		return
	}
	for _, in := range [][]byte{body, m.Body} {
		got := sdkRead(in)
		if got.err != nil || got.batch {
			t.Fatalf("gate accepted %q, SDK reads it as batch=%v err=%v", in, got.batch, got.err)
		}
		if got.method != m.Method || got.tool != m.Tool {
			t.Fatalf("gate read (%q, %q), SDK read (%q, %q) from %q", m.Method, m.Tool, got.method, got.tool, in)
		}
	}
	again, err := readRPC(m.Body)
	if err != nil || !bytes.Equal(again.Body, m.Body) || again.Method != m.Method || again.Tool != m.Tool {
		t.Fatalf("canonical body %q re-reads as %+v, %v", m.Body, again, err)
	}
}
