package challenge

import "testing"

func TestUnionScopes(t *testing.T) {
	for _, c := range []struct{ a, b, want string }{
		{"x:read", "x:write", "x:read x:write"},
		{"x:read x:write", "x:write", "x:read x:write"},
		{"", "x:write", "x:write"},
		{"x:read", "", "x:read"},
		{"a  b", "c b  a d", "a b c d"},
	} {
		if got := UnionScopes(c.a, c.b); got != c.want {
			t.Errorf("UnionScopes(%q, %q) = %q, want %q", c.a, c.b, got, c.want)
		}
	}
}
