// Package logging is monstackd's one log stack. New returns the go-kit logger
// that monstackd and the Thanos components log through, and Slog the
// *slog.Logger that Prometheus' components take over the same sink. Whichever
// side writes it, a line has one ts, one caller (the real call site), one
// level, and every key once.
package logging

import (
	"bytes"
	"encoding"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"reflect"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
	"github.com/go-logfmt/logfmt"
)

// The keys every line starts with, in this order, then the others in the
// order of the call.
const (
	keyTS     = "ts"
	keyCaller = "caller"
	keyLevel  = "level"
	keyMsg    = "msg"
)

// tsLayout is RFC 3339 in UTC with milliseconds.
const tsLayout = "2006-01-02T15:04:05.000Z07:00"

// rank orders the levels; a line passes the filter if its rank is at least
// the logger's.
type rank int8

const (
	rankDebug rank = iota
	rankInfo
	rankWarn
	rankError
	rankUnknown // a level value we do not know: never filtered out
)

func levelRank(v any) rank {
	switch x := v.(type) {
	case level.Value:
		return parseRank(x.String())
	case string:
		return parseRank(x)
	}
	return rankUnknown
}

func parseRank(s string) rank {
	switch strings.ToLower(s) {
	case "debug":
		return rankDebug
	case "info":
		return rankInfo
	case "warn", "warning":
		return rankWarn
	case "error":
		return rankError
	}
	return rankUnknown
}

// New returns a go-kit logger writing lvl (debug, info, warn or error) and
// above to w as format (logfmt or json), safe for concurrent use. Lines
// without a level pass the filter, as with level.NewFilter, and are printed
// as level=info.
func New(w io.Writer, lvl, format string) (log.Logger, error) {
	min := parseRank(lvl)
	if min == rankUnknown {
		return nil, fmt.Errorf("unknown log level %q: want debug, info, warn or error", lvl)
	}
	var enc encoder
	switch format {
	case "logfmt":
		enc = encodeLogfmt
	case "json":
		enc = encodeJSON
	default:
		return nil, fmt.Errorf("unknown log format %q: want logfmt or json", format)
	}
	return &sink{w: log.NewSyncWriter(w), enc: enc, min: min}, nil
}

// sink is the logger New returns and Slog looks for: the writer, the format
// and the level, with no keyvals of its own.
type sink struct {
	w   io.Writer
	enc encoder
	min rank
}

// Log writes one line, unless its level is filtered out.
func (l *sink) Log(keyvals ...any) error {
	return l.write(keyvals)
}

// field is one key and its value in a line.
type field struct {
	key string
	val any
}

// write writes keyvals as one line. The ts, caller and level in keyvals, if
// any, win over the ones write would add: Slog passes the record's.
func (l *sink) write(keyvals []any) error {
	if len(keyvals)%2 == 1 {
		keyvals = append(keyvals[:len(keyvals):len(keyvals)], log.ErrMissingValue)
	}
	// The level first: a filtered line costs no more than this loop. As
	// with level.NewFilter the first level counts: level.Info(l) prepends
	// its level to those of the log.With it wraps.
	lvlAt := -1
	for i := 0; i < len(keyvals); i += 2 {
		if lvlAt < 0 && keyvals[i] == keyLevel {
			lvlAt = i
		}
		if v, ok := keyvals[i+1].(tsValue); ok {
			// A line from Slog through a go-kit logger that wraps this one:
			// tell that handler where the sink is.
			v.st.found(l)
		}
	}
	if lvlAt >= 0 && levelRank(keyvals[lvlAt+1]) < l.min {
		return nil
	}

	fields := make([]field, 4, 4+len(keyvals)/2)
	fields[0].key, fields[1].key, fields[2].key, fields[3].key = keyTS, keyCaller, keyLevel, keyMsg
	for i := 0; i < len(keyvals); i += 2 {
		k := keyString(keyvals[i])
		if k == "" {
			continue
		}
		if k == keyLevel && i != lvlAt {
			continue
		}
		if t, ok := adapterTime(keyvals, i); ok {
			fields[0].val = t.UTC().Format(tsLayout)
			continue
		}
		fields = setField(fields, k, keyvals[i+1])
	}
	if fields[0].val == nil {
		fields[0].val = time.Now().UTC().Format(tsLayout)
	}
	if fields[1].val == nil {
		fields[1].val = callSite()
	}
	if fields[2].val == nil {
		fields[2].val = level.InfoValue()
	}
	if fields[3].val == nil {
		fields = append(fields[:3], fields[4:]...)
	}

	buf := bufPool.Get().(*bytes.Buffer)
	defer bufPool.Put(buf)
	buf.Reset()
	if err := l.enc(buf, fields); err != nil {
		return err
	}
	_, err := l.w.Write(buf.Bytes())
	return err
}

// adapterTime reports whether keyvals[i] is the record time of a slog
// record that an adapter to go-kit passes on, and returns it: slog-gokit,
// which Thanos uses (logutil.GoKitLogToSlog), logs slog.TimeKey and the
// time.Time right before slog.MessageKey. It becomes the ts, not a second
// timestamp.
func adapterTime(keyvals []any, i int) (time.Time, bool) {
	if keyvals[i] != slog.TimeKey || i+2 >= len(keyvals) || keyvals[i+2] != slog.MessageKey {
		return time.Time{}, false
	}
	t, ok := keyvals[i+1].(time.Time)
	return t, ok
}

// setField sets k to v: a repeated key keeps its first position and takes
// the last value, the innermost and most specific one. The four fixed keys
// are fields[:4] with a nil value until set.
func setField(fields []field, k string, v any) []field {
	if v == nil {
		v = nilValue{}
	}
	for i := range fields {
		if fields[i].key == k {
			fields[i].val = v
			return fields
		}
	}
	return append(fields, field{k, v})
}

// nilValue is a logged nil: a nil field value means a fixed key not set.
type nilValue struct{}

func keyString(k any) string {
	switch x := k.(type) {
	case string:
		return x
	case fmt.Stringer:
		return safeString(x)
	case nil:
		return ""
	}
	return fmt.Sprint(k)
}

var bufPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// ownPrefix is this package's import path and a dot: its frames are never a
// caller.
var ownPrefix = func() string {
	name := runtime.FuncForPC(reflect.ValueOf(New).Pointer()).Name()
	return name[:strings.LastIndexByte(name, '.')+1]
}()

// callSite is file:line of the first frame on the stack outside go-kit's log
// packages and this one: the code that called Log, however many log.With and
// level wrappers it went through.
func callSite() string {
	var pcs [24]uintptr
	n := runtime.Callers(3, pcs[:])
	frames := runtime.CallersFrames(pcs[:n])
	for {
		f, more := frames.Next()
		if !isLogFrame(f) {
			return fileLine(f.File, f.Line)
		}
		if !more {
			return fileLine(f.File, f.Line)
		}
	}
}

func isLogFrame(f runtime.Frame) bool {
	fn := f.Function
	return strings.HasPrefix(fn, "github.com/go-kit/log.") ||
		strings.HasPrefix(fn, "github.com/go-kit/log/level.") ||
		strings.HasPrefix(fn, ownPrefix) && !strings.HasSuffix(f.File, "_test.go") ||
		strings.HasPrefix(fn, "log/slog.") ||
		f.File == "<autogenerated>"
}

// fileLine is the caller as go-kit's log.Caller prints it: the file's base
// name and the line.
func fileLine(file string, line int) string {
	if i := strings.LastIndexByte(file, '/'); i >= 0 {
		file = file[i+1:]
	}
	return fmt.Sprintf("%s:%d", file, line)
}

// encoder writes fields as one line, newline included.
type encoder func(*bytes.Buffer, []field) error

func encodeLogfmt(buf *bytes.Buffer, fields []field) error {
	enc := logfmt.NewEncoder(buf)
	for _, f := range fields {
		err := enc.EncodeKeyval(f.key, logfmtValue(f.val))
		var merr *logfmt.MarshalerError
		if errors.Is(err, logfmt.ErrUnsupportedValueType) || errors.As(err, &merr) {
			err = enc.EncodeKeyval(f.key, fmt.Sprintf("%+v", f.val))
		}
		if errors.Is(err, logfmt.ErrUnsupportedKeyType) || errors.Is(err, logfmt.ErrInvalidKey) {
			continue
		}
		if err != nil {
			return err
		}
	}
	return enc.EndRecord()
}

func logfmtValue(v any) any {
	switch x := v.(type) {
	case nilValue:
		return nil
	case error:
		return safeError(x)
	}
	return v
}

func encodeJSON(buf *bytes.Buffer, fields []field) error {
	enc := json.NewEncoder(buf)
	enc.SetEscapeHTML(false)
	buf.WriteByte('{')
	for i, f := range fields {
		if i > 0 {
			buf.WriteByte(',')
		}
		if err := enc.Encode(f.key); err != nil {
			return err
		}
		buf.Truncate(buf.Len() - 1) // Encode's newline
		buf.WriteByte(':')
		mark := buf.Len()
		if err := enc.Encode(jsonValue(f.val)); err != nil {
			buf.Truncate(mark)
			if err := enc.Encode(fmt.Sprintf("%+v", f.val)); err != nil {
				return err
			}
		}
		buf.Truncate(buf.Len() - 1)
	}
	buf.WriteString("}\n")
	return nil
}

// jsonValue is v as go-kit's JSON logger sees it: marshalers first, then
// errors and Stringers as strings.
func jsonValue(v any) any {
	switch x := v.(type) {
	case nilValue:
		return nil
	case json.Marshaler, encoding.TextMarshaler:
		return v
	case error:
		return safeError(x)
	case fmt.Stringer:
		return safeString(x)
	}
	return v
}

func safeString(s fmt.Stringer) (str string) {
	defer func() {
		if p := recover(); p != nil {
			if v := reflect.ValueOf(s); v.Kind() == reflect.Pointer && v.IsNil() {
				str = "NULL"
			} else {
				str = fmt.Sprintf("PANIC in String method: %v", p)
			}
		}
	}()
	return s.String()
}

func safeError(err error) (str string) {
	defer func() {
		if p := recover(); p != nil {
			if v := reflect.ValueOf(err); v.Kind() == reflect.Pointer && v.IsNil() {
				str = "NULL"
			} else {
				str = fmt.Sprintf("PANIC in Error method: %v", p)
			}
		}
	}()
	return err.Error()
}
