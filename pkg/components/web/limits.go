package web

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
)

// Limits bound what a request may ask before any of it is parsed: PromQL
// parsing cannot be cancelled and grows faster than the expression's length,
// so an unbounded expression could keep the cores from scraping.
type Limits struct {
	// MaxRequestBody bounds a request's body (a POSTed form), in bytes.
	MaxRequestBody int64
	// MaxQueryLength bounds each `query` and `match[]` parameter, in bytes.
	MaxQueryLength int64
}

// limitedParams are the parameters holding PromQL that the APIs parse.
var limitedParams = []string{"query", "match[]"}

// limit answers 413 for a body over the limit and 400 for an expression
// over it, in the API's error format; other requests go to next.
func (l Limits) limit(next http.Handler) http.Handler {
	if l.MaxRequestBody <= 0 && l.MaxQueryLength <= 0 {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if l.MaxRequestBody > 0 {
			if r.ContentLength > l.MaxRequestBody {
				writeAPIError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("request body of %d bytes exceeds the limit of %d bytes (query.max_request_body)", r.ContentLength, l.MaxRequestBody))
				return
			}
			r.Body = http.MaxBytesReader(w, r.Body, l.MaxRequestBody)
		}
		if err := r.ParseForm(); err != nil {
			var tooLarge *http.MaxBytesError
			if errors.As(err, &tooLarge) {
				writeAPIError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("request body exceeds the limit of %d bytes (query.max_request_body)", l.MaxRequestBody))
				return
			}
			writeAPIError(w, http.StatusBadRequest, fmt.Sprintf("parse form: %s", err))
			return
		}
		if l.MaxQueryLength > 0 {
			for _, p := range limitedParams {
				for _, v := range r.Form[p] {
					if int64(len(v)) > l.MaxQueryLength {
						writeAPIError(w, http.StatusBadRequest, fmt.Sprintf("parameter %s: expression of %d bytes exceeds the limit of %d bytes (query.max_query_length)", p, len(v), l.MaxQueryLength))
						return
					}
				}
			}
		}
		next.ServeHTTP(w, r)
	})
}

// writeAPIError answers in the Prometheus API's error format.
func writeAPIError(w http.ResponseWriter, code int, msg string) {
	body, _ := json.Marshal(map[string]string{"status": "error", "errorType": "bad_data", "error": msg})
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_, _ = w.Write(append(body, '\n'))
}
