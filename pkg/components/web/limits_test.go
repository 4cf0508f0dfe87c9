package web

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

func TestLimitsRejectBeforeParsing(t *testing.T) {
	reached := 0
	h := Limits{MaxRequestBody: 1000, MaxQueryLength: 100}.limit(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reached++
		_, _ = io.WriteString(w, r.FormValue("query"))
	}))
	long := strings.Repeat("up+", 50) + "up"
	for _, tc := range []struct {
		name string
		req  *http.Request
		code int
		want string
	}{
		{"short GET", httptest.NewRequest("GET", "/api/v1/query?query=up", nil), 200, "up"},
		{"short POST", form(url.Values{"query": {"up"}}), 200, "up"},
		{"long query GET", httptest.NewRequest("GET", "/api/v1/query?"+url.Values{"query": {long}}.Encode(), nil), 400, "parameter query: expression of 152 bytes exceeds the limit of 100 bytes (query.max_query_length)"},
		{"long query POST", form(url.Values{"query": {long}}), 400, "query.max_query_length"},
		{"long match[]", form(url.Values{"match[]": {"up", long}}), 400, "parameter match[]"},
		{"large body", form(url.Values{"query": {"up"}, "pad": {strings.Repeat("x", 2000)}}), 413, "query.max_request_body"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := reached
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, tc.req)
			body := rec.Body.String()
			if rec.Code != tc.code || !strings.Contains(body, tc.want) {
				t.Fatalf("%d %s, want %d containing %q", rec.Code, body, tc.code, tc.want)
			}
			if tc.code != 200 && reached != before {
				t.Error("the request reached the API")
			}
		})
	}
}

func form(v url.Values) *http.Request {
	r := httptest.NewRequest("POST", "/api/v1/query", strings.NewReader(v.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return r
}
