package lease

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/monstackd/monstackd/pkg/components/lease/leasetest"
)

// fsStoreAt is the FILESYSTEM store of a bucket in dir.
func fsStoreAt(t *testing.T, dir string) Store {
	t.Helper()
	s, err := NewStore([]byte("type: FILESYSTEM\nconfig:\n  directory: "+dir+"\n"), "bucket.yml: field ")
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// race runs the writers at once (leasetest.Race): any failure but a
// lost conditional write fails the test.
func race(t *testing.T, n int, write func(i int) (string, error)) (winners []int, versions []string) {
	t.Helper()
	return leasetest.Race(t, n, func(err error) bool { return errors.Is(err, ErrConflict) }, write)
}

// Of writers racing to Create, and then to Replace one version, exactly
// one wins each time, and the store then reads back the winner's body.
func TestFSStoreCAS(t *testing.T) {
	const rounds, writers, replaces = 200, 8, 4
	ctx := context.Background()
	root := t.TempDir()
	for r := range rounds {
		s := fsStoreAt(t, filepath.Join(root, fmt.Sprint(r)))
		body := func(step, i int) []byte { return fmt.Appendf(nil, `{"round":%d,"step":%d,"writer":%d}`, r, step, i) }
		winners, versions := race(t, writers, func(i int) (string, error) { return s.Create(ctx, body(0, i)) })
		if len(winners) != 1 {
			t.Fatalf("round %d: %d of %d Creates won, want 1", r, len(winners), writers)
		}
		readBack(t, s, body(0, winners[0]), versions[0])
		stale := []string{}
		version := versions[0]
		for step := 1; step <= replaces; step++ {
			winners, versions = race(t, writers, func(i int) (string, error) {
				if i%4 == 3 && len(stale) > 0 { // a few writers hold an old version
					_, err := s.Replace(ctx, stale[i%len(stale)], body(step, i))
					if err == nil {
						return "", fmt.Errorf("replace of stale version %s won", stale[i%len(stale)])
					}
					return "", err
				}
				return s.Replace(ctx, version, body(step, i))
			})
			if len(winners) != 1 {
				t.Fatalf("round %d step %d: %d Replaces of version %s won, want 1", r, step, len(winners), version)
			}
			readBack(t, s, body(step, winners[0]), versions[0])
			stale = append(stale, version)
			version = versions[0]
		}
		if _, err := s.Create(ctx, []byte("late")); !errors.Is(err, ErrConflict) {
			t.Fatalf("round %d: Create over an existing lease: want ErrConflict, got %v", r, err)
		}
	}
}

func readBack(t *testing.T, s Store, want []byte, wantVersion string) {
	t.Helper()
	got, v, err := s.Read(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != string(want) || v != wantVersion {
		t.Fatalf("read %s version %s, want %s version %s", got, v, want, wantVersion)
	}
}

// A Replace based on a generation that cleanup removed links that
// generation's name again; it must still lose.
func TestFSStoreStaleReplaceAfterCleanup(t *testing.T) {
	ctx := context.Background()
	s := fsStoreAt(t, t.TempDir())
	first, err := s.Create(ctx, []byte("1"))
	if err != nil {
		t.Fatal(err)
	}
	v := first
	var versions []string
	for i := 2; i <= 8; i++ {
		if v, err = s.Replace(ctx, v, fmt.Append(nil, i)); err != nil {
			t.Fatal(err)
		}
		versions = append(versions, v)
	}
	dir := s.(*fsStore).dir
	if _, err := os.Stat(filepath.Join(dir, "compactor-lease.json."+versions[0])); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("generation 2 was not cleaned up: %v", err)
	}
	for _, stale := range []string{first, versions[0], versions[3]} {
		if _, err := s.Replace(ctx, stale, []byte("stale")); !errors.Is(err, ErrConflict) {
			t.Fatalf("Replace of stale version %s: want ErrConflict, got %v", stale, err)
		}
	}
	readBack(t, s, []byte("8"), v)
	if _, err := s.Replace(ctx, v, []byte("9")); err != nil {
		t.Fatalf("Replace of the current version after stale ones: %v", err)
	}
}

// A lease object removed by hand is not the version a Replace names.
func TestFSStoreReplaceRemoved(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := fsStoreAt(t, dir)
	v, err := s.Create(ctx, []byte("1"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(filepath.Join(dir, "monstackd")); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Read(ctx); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Read after removal: want ErrNotFound, got %v", err)
	}
	if _, err := s.Replace(ctx, v, []byte("2")); !errors.Is(err, ErrConflict) {
		t.Fatalf("Replace of a removed object: want ErrConflict, got %v", err)
	}
	if _, err := s.Create(ctx, []byte("3")); err != nil {
		t.Fatalf("Create after removal: %v", err)
	}
}

// Readers racing writers see only whole bodies, each with its own version.
func TestFSStoreReadersSeeWholeBodies(t *testing.T) {
	ctx := context.Background()
	s := fsStoreAt(t, t.TempDir())
	type doc struct {
		Gen     string `json:"gen"`
		Padding string `json:"padding"`
	}
	padding := strings.Repeat("x", 256<<10) // several write(2)s and pages
	body := func(gen string) []byte {
		b, _ := json.Marshal(doc{Gen: gen, Padding: padding})
		return b
	}
	first := version(1)
	if _, err := s.Create(ctx, body(first)); err != nil {
		t.Fatal(err)
	}
	var (
		done             atomic.Bool
		reads            atomic.Int64
		readers, writers sync.WaitGroup
	)
	for range 4 {
		readers.Go(func() {
			for !done.Load() {
				b, v, err := s.Read(ctx)
				if err != nil {
					t.Errorf("read: %v", err)
					return
				}
				var d doc
				if err := json.Unmarshal(b, &d); err != nil || d.Padding != padding {
					t.Errorf("read a partial or invalid body of %d bytes at version %s: %v", len(b), v, err)
					return
				}
				if d.Gen != v {
					t.Errorf("read the body of version %s as version %s", d.Gen, v)
					return
				}
				reads.Add(1)
			}
		})
	}
	// Two writers compete, each replacing what it reads; the body names
	// the version it will have.
	const writes = 100
	var won atomic.Int64
	for range 2 {
		writers.Go(func() {
			for n := 0; n < writes; {
				_, v, err := s.Read(ctx)
				if err != nil {
					t.Errorf("writer read: %v", err)
					return
				}
				gen, _ := strconv.ParseInt(v, 10, 64)
				if _, err := s.Replace(ctx, v, body(version(gen+1))); err == nil {
					n++
					won.Add(1)
				} else if !errors.Is(err, ErrConflict) {
					t.Errorf("replace: %v", err)
					return
				}
			}
		})
	}
	writers.Wait()
	done.Store(true)
	readers.Wait()
	// A write replaced before its writer checked the outcome counts as
	// lost, so there may be more generations than wins, never fewer.
	if _, v, _ := s.Read(ctx); v < version(won.Load()+1) {
		t.Errorf("after %d writes the version is %s", won.Load(), v)
	}
	if reads.Load() == 0 {
		t.Fatal("no reads")
	}
}

func TestNewStore(t *testing.T) {
	const where = "bucket.yml: field "
	for _, tc := range []struct {
		name, yaml string
		want       []string // in the error, or in String() when wantString
		is         error
		wantString bool
	}{
		{name: "GCS", yaml: "type: GCS\nconfig:\n  bucket: b\n", is: ErrUnsupported,
			want: []string{"bucket.yml: field type: GCS", "compactor.lease.enabled: false", "compactor.enabled: false"}},
		{name: "lower-case azure", yaml: "type: azure\nconfig:\n  container: c\n", is: ErrUnsupported, want: []string{"AZURE"}},
		{name: "bad YAML", yaml: "type: [S3\n", want: []string{"bucket.yml: parse bucket config: "}},
		{name: "unknown top-level field", yaml: "type: S3\nconfg: {}\n", want: []string{"bucket.yml: parse bucket config: ", "confg"}},
		{name: "no type", yaml: "config: {}\n", want: []string{"bucket.yml: field type: missing"}},
		{name: "unknown S3 field", yaml: "type: S3\nconfig:\n  bucket: b\n  endpoint: e\n  buckt: x\n", want: []string{"bucket.yml: field config: ", "buckt"}},
		{name: "S3 without endpoint", yaml: "type: S3\nconfig:\n  bucket: b\n", want: []string{"bucket.yml: field config: no s3 endpoint"}},
		{name: "FILESYSTEM without directory", yaml: "type: FILESYSTEM\nconfig: {}\n", want: []string{"bucket.yml: field config: directory: missing"}},
		{name: "S3 with prefix", wantString: true,
			yaml: "type: S3\nprefix: /pre/fix/\nconfig:\n  bucket: thanos\n  endpoint: s3.example.com\n  access_key: AK\n  secret_key: s3cr3t-value\n",
			want: []string{`s3 bucket "thanos" object "pre/fix/monstackd/compactor-lease.json"`}},
		{name: "FILESYSTEM with prefix", wantString: true, yaml: "type: FILESYSTEM\nprefix: p\nconfig:\n  directory: /data/bucket\n",
			want: []string{`filesystem directory "/data/bucket/p/monstackd" object "compactor-lease.json.<generation>"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := NewStore([]byte(tc.yaml), where)
			if tc.wantString {
				if err != nil {
					t.Fatal(err)
				}
				if got := s.String(); got != tc.want[0] {
					t.Fatalf("String() = %s, want %s", got, tc.want[0])
				}
				return
			}
			if err == nil {
				t.Fatalf("no error for %q", tc.yaml)
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("error %v is not %v", err, tc.is)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}
