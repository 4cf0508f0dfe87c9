package config

import (
	"strings"
	"testing"
)

func TestParseRoleValid(t *testing.T) {
	for _, tc := range []struct {
		in          string
		wantReplica string
	}{
		{"standalone", ""},
		{"replica-a", "a"},
		{"replica-b", "b"},
		{"replica-eu-west-1", "eu-west-1"},
		{"replica-A.2_x", "A.2_x"},
		{"replica-0", "0"},
	} {
		t.Run(tc.in, func(t *testing.T) {
			r, err := ParseRole(tc.in)
			if err != nil {
				t.Fatalf("ParseRole(%q): %v", tc.in, err)
			}
			if want := (Role{Name: tc.in, Replica: tc.wantReplica}); r != want {
				t.Errorf("ParseRole(%q) = %+v, want %+v", tc.in, r, want)
			}
			if got, want := r.IsReplica(), tc.wantReplica != ""; got != want {
				t.Errorf("IsReplica() = %t, want %t", got, want)
			}
		})
	}
}

func TestParseRoleInvalid(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string
	}{
		{"replica-", []string{`"replica-"`, "no replica name"}},
		{"replica", []string{`"replica"`, "no replica name"}},
		{"foo", []string{"unknown role", `"foo"`}},
		{"", []string{"unknown role"}},
		{"Standalone", []string{"unknown role"}},
		{"replicaa", []string{"unknown role"}},
		{"replica-a b", []string{`"replica-a b"`, `"a b"`}},
		{"replica--a", []string{`"-a"`}},
		{"replica-.a", []string{`".a"`}},
		{"replica-a/b", []string{`"a/b"`}},
		{"replica-a\n", []string{`"a\n"`}},
	} {
		t.Run(tc.in, func(t *testing.T) {
			r, err := ParseRole(tc.in)
			if err == nil {
				t.Fatalf("ParseRole(%q) = %+v, want an error", tc.in, r)
			}
			if r != (Role{}) {
				t.Errorf("ParseRole(%q) returned %+v along with error %v", tc.in, r, err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestZeroRoleIsNotReplica(t *testing.T) {
	if (Role{}).IsReplica() {
		t.Error("zero Role reports IsReplica")
	}
}
