package logging

import (
	"context"
	"log/slog"
	"runtime"
	"sync/atomic"
	"time"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
)

// Slog returns a *slog.Logger that writes through logger, for Prometheus'
// components. A record becomes one call of logger.Log with the record's time
// as ts, its call site as caller and its level as level, so that the sink New
// built adds none of its own; With attrs and the attrs of the record follow,
// flattened (a group's attrs as group.key).
//
// logger may be the one New returned or a log.With of it (the keys it adds
// come first and, as always, a repeated key keeps its last value). Enabled
// answers from the sink's level once the first record has reached it. Given
// another go-kit logger, Slog passes the same keys to it.
func Slog(logger log.Logger) *slog.Logger {
	h := &handler{next: logger, st: &slogState{}}
	if l, ok := logger.(*sink); ok {
		h.st.found(l)
	}
	return slog.New(h)
}

// slogState is shared by a handler and the ones its With and WithGroup
// derive: the sink, once known.
type slogState struct {
	sink atomic.Pointer[sink]
}

func (s *slogState) found(l *sink) {
	if s.sink.Load() == nil {
		s.sink.Store(l)
	}
}

type handler struct {
	next   log.Logger
	st     *slogState
	attrs  []any  // With attrs, flattened, as keyvals
	prefix string // the open groups: "" or "a.b."
}

func (h *handler) Enabled(_ context.Context, l slog.Level) bool {
	if s := h.st.sink.Load(); s != nil {
		return slogRank(l) >= s.min
	}
	return true // the sink filters
}

func (h *handler) Handle(_ context.Context, r slog.Record) error {
	kv := make([]any, 0, 8+len(h.attrs)+2*r.NumAttrs())
	t := r.Time
	if t.IsZero() {
		t = time.Now()
	}
	kv = append(kv, keyTS, tsValue{t: t, st: h.st})
	if r.PC != 0 {
		f, _ := runtime.CallersFrames([]uintptr{r.PC}).Next()
		kv = append(kv, keyCaller, fileLine(f.File, f.Line))
	}
	kv = append(kv, keyLevel, slogLevel(r.Level))
	kv = append(kv, h.attrs...)
	kv = append(kv, keyMsg, r.Message)
	r.Attrs(func(a slog.Attr) bool {
		kv = appendAttr(kv, h.prefix, a)
		return true
	})
	return h.next.Log(kv...)
}

func (h *handler) WithAttrs(attrs []slog.Attr) slog.Handler {
	if len(attrs) == 0 {
		return h
	}
	c := *h
	c.attrs = h.attrs[:len(h.attrs):len(h.attrs)]
	for _, a := range attrs {
		c.attrs = appendAttr(c.attrs, h.prefix, a)
	}
	return &c
}

func (h *handler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	c := *h
	c.prefix = h.prefix + name + "."
	return &c
}

// appendAttr appends a as keyvals, a group's attrs as prefix.group.key.
func appendAttr(kv []any, prefix string, a slog.Attr) []any {
	a.Value = a.Value.Resolve()
	if a.Equal(slog.Attr{}) {
		return kv
	}
	if a.Value.Kind() == slog.KindGroup {
		p := prefix
		if a.Key != "" {
			p = prefix + a.Key + "."
		}
		for _, ga := range a.Value.Group() {
			kv = appendAttr(kv, p, ga)
		}
		return kv
	}
	return append(kv, prefix+a.Key, slogValue(a.Value))
}

func slogValue(v slog.Value) any {
	switch v.Kind() {
	case slog.KindString:
		return v.String()
	case slog.KindInt64:
		return v.Int64()
	case slog.KindUint64:
		return v.Uint64()
	case slog.KindFloat64:
		return v.Float64()
	case slog.KindBool:
		return v.Bool()
	case slog.KindDuration:
		return v.Duration()
	case slog.KindTime:
		return v.Time()
	}
	x := v.Any()
	if err, ok := x.(error); ok {
		return safeError(err)
	}
	return x
}

// slogRank maps slog's levels onto go-kit's four: below info is debug, and
// so on.
func slogRank(l slog.Level) rank {
	switch {
	case l < slog.LevelInfo:
		return rankDebug
	case l < slog.LevelWarn:
		return rankInfo
	case l < slog.LevelError:
		return rankWarn
	}
	return rankError
}

func slogLevel(l slog.Level) level.Value {
	switch slogRank(l) {
	case rankDebug:
		return level.DebugValue()
	case rankInfo:
		return level.InfoValue()
	case rankWarn:
		return level.WarnValue()
	}
	return level.ErrorValue()
}

// tsValue is a record's time. It prints as the sink's ts does and carries
// the handler's state, so that the sink, reached through log.With wrappers,
// makes itself known to the handler.
type tsValue struct {
	t  time.Time
	st *slogState
}

func (v tsValue) String() string { return v.t.UTC().Format(tsLayout) }

func (v tsValue) MarshalText() ([]byte, error) { return []byte(v.String()), nil }
