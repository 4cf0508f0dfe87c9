package web

import (
	"bytes"
	"html"
	"net/http"
	"strconv"
	"strings"
)

// Banner shows text() as a bar at the foot of h's HTML pages (the UI's
// navigation bar is fixed at the top): state the
// Thanos UI has no place for (the compactor lease on the bucket UI). Other
// responses (the API, scripts) pass untouched.
func Banner(h http.Handler, text func() string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		bw := &bannerWriter{ResponseWriter: w}
		h.ServeHTTP(bw, r)
		if bw.buf == nil {
			return
		}
		page := bw.buf.Bytes()
		if t := text(); t != "" {
			if i := bytes.Index(page, []byte("<body")); i >= 0 {
				if j := bytes.IndexByte(page[i:], '>'); j >= 0 {
					at := i + j + 1
					line := `<div id="monstackd-banner" style="position:fixed;bottom:0;left:0;right:0;z-index:2000;padding:6px 16px;background:#e8f4fd;color:#0c5460;border-top:1px solid #bee5eb;font-family:sans-serif;font-size:14px">` + html.EscapeString(t) + `</div>`
					page = append(page[:at:at], append([]byte(line), page[at:]...)...)
				}
			}
		}
		w.Header().Set("Content-Length", strconv.Itoa(len(page)))
		w.WriteHeader(bw.status)
		w.Write(page)
	})
}

// bannerWriter buffers an HTML response, passes anything else through.
type bannerWriter struct {
	http.ResponseWriter
	status  int
	decided bool
	buf     *bytes.Buffer
}

func (w *bannerWriter) WriteHeader(code int) {
	if w.decided {
		return
	}
	w.decided, w.status = true, code
	if strings.HasPrefix(w.Header().Get("Content-Type"), "text/html") && w.Header().Get("Content-Encoding") == "" {
		w.buf = &bytes.Buffer{}
		w.Header().Del("Content-Length")
		return
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *bannerWriter) Write(p []byte) (int, error) {
	if !w.decided {
		if w.Header().Get("Content-Type") == "" {
			w.Header().Set("Content-Type", http.DetectContentType(p))
		}
		w.WriteHeader(http.StatusOK)
	}
	if w.buf != nil {
		return w.buf.Write(p)
	}
	return w.ResponseWriter.Write(p)
}
