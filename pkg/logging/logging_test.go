package logging

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
	"github.com/go-logfmt/logfmt"
)

var formats = []string{"logfmt", "json"}

// kv is one key and its value as a line holds them, in order.
type kv struct{ key, val string }

// parseLines parses every line of out, failing the test on a line that does
// not parse.
func parseLines(t *testing.T, format string, out []byte) [][]kv {
	t.Helper()
	var lines [][]kv
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		line := sc.Text()
		var (
			fields []kv
			err    error
		)
		if format == "json" {
			fields, err = parseJSON(line)
		} else {
			fields, err = parseLogfmt(line)
		}
		if err != nil {
			t.Fatalf("line %q does not parse as %s: %v", line, format, err)
		}
		lines = append(lines, fields)
	}
	return lines
}

func parseLogfmt(line string) ([]kv, error) {
	d := logfmt.NewDecoder(strings.NewReader(line))
	var fields []kv
	for d.ScanRecord() {
		for d.ScanKeyval() {
			fields = append(fields, kv{string(d.Key()), string(d.Value())})
		}
	}
	return fields, d.Err()
}

// parseJSON keeps every key in order, repeated ones too, which decoding into
// a map would hide.
func parseJSON(line string) ([]kv, error) {
	d := json.NewDecoder(strings.NewReader(line))
	d.UseNumber()
	if tok, err := d.Token(); err != nil || tok != json.Delim('{') {
		return nil, fmt.Errorf("not an object: %v %v", tok, err)
	}
	var fields []kv
	for d.More() {
		tok, err := d.Token()
		if err != nil {
			return nil, err
		}
		var v any
		if err := d.Decode(&v); err != nil {
			return nil, err
		}
		s, ok := v.(string)
		if !ok {
			s = fmt.Sprint(v)
		}
		fields = append(fields, kv{tok.(string), s})
	}
	if _, err := d.Token(); err != nil {
		return nil, err
	}
	return fields, nil
}

// get returns the values of key in order.
func get(fields []kv, key string) []string {
	var vs []string
	for _, f := range fields {
		if f.key == key {
			vs = append(vs, f.val)
		}
	}
	return vs
}

func thisLine() int {
	_, _, line, _ := runtime.Caller(1)
	return line
}

// checkLine asserts one ts, one caller at logging_test.go:callerLine, one
// level lvl, and every key once, ts, caller and level first; it returns the
// line as a map.
func checkLine(t *testing.T, fields []kv, callerLine int, lvl string) map[string]string {
	t.Helper()
	m := map[string]string{}
	for _, f := range fields {
		if _, ok := m[f.key]; ok {
			t.Errorf("key %q twice in %v", f.key, fields)
		}
		m[f.key] = f.val
	}
	if len(fields) < 3 || fields[0].key != "ts" || fields[1].key != "caller" || fields[2].key != "level" {
		t.Fatalf("line does not start with ts, caller, level: %v", fields)
	}
	ts, err := time.Parse(time.RFC3339, m["ts"])
	if err != nil || !strings.HasSuffix(m["ts"], "Z") || len(m["ts"]) != len("2006-01-02T15:04:05.000Z") {
		t.Errorf("ts %q is not RFC 3339 UTC with milliseconds (%v): %v", m["ts"], err, fields)
	}
	if d := time.Since(ts); d < -time.Second || d > time.Minute {
		t.Errorf("ts %q is not now: %v", m["ts"], fields)
	}
	if want := fmt.Sprintf("logging_test.go:%d", callerLine); m["caller"] != want {
		t.Errorf("caller %q, want %q: %v", m["caller"], want, fields)
	}
	if m["level"] != lvl {
		t.Errorf("level %q, want %q: %v", m["level"], lvl, fields)
	}
	return m
}

func newLogger(t *testing.T, lvl, format string) (log.Logger, *bytes.Buffer) {
	t.Helper()
	var buf bytes.Buffer
	l, err := New(&buf, lvl, format)
	if err != nil {
		t.Fatal(err)
	}
	return l, &buf
}

func oneLine(t *testing.T, format string, buf *bytes.Buffer) []kv {
	t.Helper()
	lines := parseLines(t, format, buf.Bytes())
	if len(lines) != 1 {
		t.Fatalf("want 1 line, got %d: %q", len(lines), buf.String())
	}
	return lines[0]
}

func TestNewRejects(t *testing.T) {
	if _, err := New(io.Discard, "trace", "logfmt"); err == nil {
		t.Error("level trace accepted")
	}
	if _, err := New(io.Discard, "info", "journald"); err == nil {
		t.Error("format journald accepted")
	}
}

func TestGoKit(t *testing.T) {
	for _, format := range formats {
		t.Run(format, func(t *testing.T) {
			t.Run("plain", func(t *testing.T) {
				l, buf := newLogger(t, "debug", format)
				at := thisLine() + 1
				l.Log("msg", "plain call", "err", errors.New("boom"))
				m := checkLine(t, oneLine(t, format, buf), at, "info")
				if m["msg"] != "plain call" || m["err"] != "boom" {
					t.Errorf("got %v", m)
				}
			})
			t.Run("with and level", func(t *testing.T) {
				l, buf := newLogger(t, "debug", format)
				wl := log.With(l, "component", "web")
				at := thisLine() + 1
				level.Warn(wl).Log("msg", "through With and level.Warn")
				m := checkLine(t, oneLine(t, format, buf), at, "warn")
				if m["component"] != "web" {
					t.Errorf("component %q: %v", m["component"], m)
				}
			})
			t.Run("nested with repeats component", func(t *testing.T) {
				l, buf := newLogger(t, "debug", format)
				root := log.With(l, "component", "monstackd")
				inner := log.With(level.Info(root), "component", "querier", "replica", "a")
				at := thisLine() + 1
				level.Error(inner).Log("msg", "nested", "replica", "b")
				fields := oneLine(t, format, buf)
				m := checkLine(t, fields, at, "error")
				if m["component"] != "querier" || m["replica"] != "b" {
					t.Errorf("want the innermost component and replica: %v", fields)
				}
				var order []string
				for _, f := range fields {
					order = append(order, f.key)
				}
				if got := strings.Join(order, " "); got != "ts caller level msg component replica" {
					t.Errorf("key order %q", got)
				}
			})
			t.Run("filter", func(t *testing.T) {
				l, buf := newLogger(t, "warn", format)
				level.Debug(l).Log("msg", "no")
				level.Info(log.With(l, "component", "x")).Log("msg", "no")
				at := thisLine() + 1
				level.Warn(l).Log("msg", "yes")
				checkLine(t, oneLine(t, format, buf), at, "warn")
			})
		})
	}
}

// counter counts how often it is resolved, that is formatted.
type counter struct{ n atomic.Int32 }

func (c *counter) LogValue() slog.Value { c.n.Add(1); return slog.StringValue("resolved") }

func TestSlog(t *testing.T) {
	for _, format := range formats {
		t.Run(format, func(t *testing.T) {
			t.Run("record", func(t *testing.T) {
				l, buf := newLogger(t, "debug", format)
				s := Slog(l)
				at := thisLine() + 1
				s.Warn("slog call", "err", errors.New("boom"), slog.Group("g", "k", 1, slog.Group("h", "d", time.Second)), "n", 2.5)
				m := checkLine(t, oneLine(t, format, buf), at, "warn")
				for k, v := range map[string]string{"msg": "slog call", "err": "boom", "g.k": "1", "g.h.d": "1s", "n": "2.5"} {
					if m[k] != v {
						t.Errorf("%s=%q, want %q: %v", k, m[k], v, m)
					}
				}
			})
			t.Run("with and groups", func(t *testing.T) {
				l, buf := newLogger(t, "debug", format)
				s := Slog(l).With("a", 1).WithGroup("g").With("b", 2)
				at := thisLine() + 1
				s.Error("grouped", "c", 3)
				m := checkLine(t, oneLine(t, format, buf), at, "error")
				for k, v := range map[string]string{"a": "1", "g.b": "2", "g.c": "3"} {
					if m[k] != v {
						t.Errorf("%s=%q, want %q: %v", k, m[k], v, m)
					}
				}
			})
			t.Run("with repeats component", func(t *testing.T) {
				l, buf := newLogger(t, "debug", format)
				// The root carries a component, as in main, and slog With
				// sets it twice more: the innermost wins.
				s := Slog(log.With(l, "component", "monstackd")).With("component", "tsdb").With("component", "head")
				at := thisLine() + 1
				s.Info("replayed", "component", "wal")
				fields := oneLine(t, format, buf)
				m := checkLine(t, fields, at, "info")
				if m["component"] != "wal" {
					t.Errorf("component %q: %v", m["component"], fields)
				}
				if fields[3].key != "msg" || fields[4].key != "component" {
					t.Errorf("want msg then component after ts, caller, level: %v", fields)
				}
			})
			t.Run("filter", func(t *testing.T) {
				l, buf := newLogger(t, "info", format)
				for name, s := range map[string]*slog.Logger{"direct": Slog(l), "through With": Slog(log.With(l, "component", "x"))} {
					buf.Reset()
					var c counter
					at := thisLine() + 1
					s.Info("first")
					s.Debug("dropped", "v", &c)
					if s.Enabled(context.Background(), slog.LevelDebug) || !s.Enabled(context.Background(), slog.LevelInfo) {
						t.Errorf("%s: Enabled does not follow the level info", name)
					}
					s.Debug("dropped", "v", &c)
					checkLine(t, oneLine(t, format, buf), at, "info")
					// Through a log.With the handler learns the level from
					// the first line, so the first debug line is formatted
					// and dropped by the sink.
					if max := map[string]int32{"direct": 0, "through With": 1}[name]; c.n.Load() > max {
						t.Errorf("%s: debug attrs formatted %d times at level info", name, c.n.Load())
					}
				}
			})
		})
	}
}

func TestSlogOtherLoggers(t *testing.T) {
	Slog(log.NewNopLogger()).Info("nothing", "err", errors.New("x"))

	var buf bytes.Buffer
	at := thisLine() + 1
	Slog(log.NewLogfmtLogger(&buf)).With("component", "c").Info("plain go-kit", "err", errors.New("boom"))
	m := checkLine(t, oneLine(t, "logfmt", &buf), at, "info")
	if m["err"] != "boom" || m["component"] != "c" {
		t.Errorf("got %v", m)
	}
}

func TestConcurrent(t *testing.T) {
	for _, format := range formats {
		t.Run(format, func(t *testing.T) {
			l, buf := newLogger(t, "debug", format)
			s := Slog(log.With(l, "component", "monstackd"))
			var wg sync.WaitGroup
			for i := range 8 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					gl := log.With(l, "component", fmt.Sprint("g", i))
					for j := range 50 {
						level.Info(gl).Log("msg", "go-kit", "j", j)
						s.With("component", "slog").Info("slog", "j", j)
					}
				}()
			}
			wg.Wait()
			lines := parseLines(t, format, buf.Bytes())
			if len(lines) != 8*50*2 {
				t.Fatalf("%d lines, want %d", len(lines), 8*50*2)
			}
			for _, f := range lines {
				if len(get(f, "ts")) != 1 || len(get(f, "caller")) != 1 || len(get(f, "component")) != 1 {
					t.Fatalf("bad line %v", f)
				}
			}
		})
	}
}

// Thanos turns go-kit loggers into slog ones with slog-gokit
// (logutil.GoKitLogToSlog), which logs the record's time as "time" before
// "msg": that is the ts, not a second timestamp.
func TestAdapterTime(t *testing.T) {
	for _, format := range formats {
		t.Run(format, func(t *testing.T) {
			l, buf := newLogger(t, "debug", format)
			rt := time.Now().Add(-time.Second).UTC()
			at := thisLine() + 1
			level.Debug(l).Log("time", rt, "msg", "from slog-gokit", "value", time.Hour)
			m := checkLine(t, oneLine(t, format, buf), at, "debug")
			if _, ok := m["time"]; ok || m["ts"] != rt.Format(tsLayout) {
				t.Errorf("want the record time as ts and no time key: %v", m)
			}

			// A time field elsewhere is a field.
			buf.Reset()
			l.Log("msg", "a time field", "time", rt)
			if m := oneLine(t, format, buf); len(get(m, "time")) != 1 {
				t.Errorf("time field lost: %v", m)
			}
		})
	}
}
