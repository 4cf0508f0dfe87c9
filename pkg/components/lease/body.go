package lease

import (
	"encoding/json"
	"fmt"
	"time"
)

// timeFormat is RFC 3339 with milliseconds.
const timeFormat = "2006-01-02T15:04:05.000Z07:00"

// record is the lease object's body. Its times are the writer's wall clock,
// for people and metrics only: no reader trusts them to decide (see Lease).
type record struct {
	Holder   string `json:"holder"`
	Instance string `json:"instance"`
	Epoch    int64  `json:"epoch"`
	Acquired string `json:"acquired"`
	Renewed  string `json:"renewed"`
	Expires  string `json:"expires"`
	TTL      string `json:"ttl"`
	// Renewals counts the writes of this epoch, so that every write has a
	// new body: S3's ETag is the body's MD5, and a standby watches it change.
	Renewals int64 `json:"renewals"`
	Released bool  `json:"released"`
}

func (r record) marshal() []byte {
	b, err := json.Marshal(r)
	if err != nil {
		panic(err) // strings, numbers and a bool always marshal
	}
	return append(b, '\n')
}

func parseRecord(b []byte) (record, error) {
	var r record
	if err := json.Unmarshal(b, &r); err != nil {
		return record{}, fmt.Errorf("lease object: %w", err)
	}
	return r, nil
}

// ttl is the TTL the writer used, or 0 if it is unreadable.
func (r record) ttl() time.Duration {
	d, err := time.ParseDuration(r.TTL)
	if err != nil || d < 0 {
		return 0
	}
	return d
}

// expires is the writer's expiry, or the zero time if it is unreadable.
func (r record) expires() time.Time {
	t, _ := time.Parse(time.RFC3339, r.Expires) // takes any fraction of a second
	return t
}

func formatTime(t time.Time) string { return t.UTC().Format(timeFormat) }
