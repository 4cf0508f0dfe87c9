package lease

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/thanos-io/objstore/providers/filesystem"
	"gopkg.in/yaml.v2"
)

// fsStore keeps the lease in a FILESYSTEM bucket as immutable generations,
// <name>.<generation> with the generation zero-padded; the current lease is
// the highest generation and its number is the version.
//
// A write goes to a temp file in the same directory, is fsynced, and is
// then linked to its generation's name: link(2) fails with EEXIST if the
// name exists, atomically, so exactly one of the writers racing for a
// generation wins, and a reader only ever opens complete files. Create
// links generation 1, Replace(N) links N+1.
//
// Old generations are removed, except the first and the last three. The
// first stays so that a later Create still conflicts. A stale Replace(N)
// could link an N+1 that was removed; then a higher generation exists (the
// highest is never removed), so after linking Replace checks that N+1 is
// the highest and N is still there, and reports a conflict otherwise.
type fsStore struct {
	dir  string // directory of the generations
	base string // file name without the generation
}

// fsKeep is how many of the newest generations stay, so that a reader that
// listed the directory a moment ago still finds the file it picked.
const fsKeep = 3

func newFSStore(conf []byte, name string) (*fsStore, error) {
	var c filesystem.Config
	if err := yaml.UnmarshalStrict(conf, &c); err != nil {
		return nil, err
	}
	if c.Directory == "" {
		return nil, errors.New("directory: missing")
	}
	return &fsStore{
		dir:  filepath.Join(c.Directory, filepath.FromSlash(path.Dir(name))),
		base: path.Base(name),
	}, nil
}

func (s *fsStore) String() string {
	return fmt.Sprintf("filesystem directory %q object %q", s.dir, s.base+".<generation>")
}

func (s *fsStore) Read(ctx context.Context) ([]byte, string, error) {
	// A listed generation can be removed before it is opened when two
	// newer ones were written meanwhile: list again.
	for {
		if err := ctx.Err(); err != nil {
			return nil, "", fmt.Errorf("%s: read: %w", s, err)
		}
		gens, err := s.generations()
		if err != nil {
			return nil, "", fmt.Errorf("%s: read: %w", s, err)
		}
		if len(gens) == 0 {
			return nil, "", fmt.Errorf("%s: read: %w", s, ErrNotFound)
		}
		gen := gens[len(gens)-1]
		body, err := os.ReadFile(s.path(gen))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, "", fmt.Errorf("%s: read: %w", s, err)
		}
		return body, version(gen), nil
	}
}

func (s *fsStore) Create(ctx context.Context, body []byte) (string, error) {
	if err := s.link(ctx, 1, body); err != nil {
		return "", fmt.Errorf("%s: create: %w", s, err)
	}
	return version(1), nil
}

func (s *fsStore) Replace(ctx context.Context, v string, body []byte) (string, error) {
	gen, err := strconv.ParseInt(v, 10, 64)
	if err != nil || gen < 1 {
		return "", fmt.Errorf("%s: replace: invalid version %q", s, v)
	}
	next := gen + 1
	if err := s.link(ctx, next, body); err != nil {
		return "", fmt.Errorf("%s: replace: %w", s, err)
	}
	gens, err := s.generations()
	if err != nil {
		// Whether the write won is unknown; losing is the safe answer.
		_ = os.Remove(s.path(next))
		return "", fmt.Errorf("%s: replace: check generations: %w", s, err)
	}
	if last := gens[len(gens)-1]; last > next {
		// Generation next was written and removed before: a stale version.
		_ = os.Remove(s.path(next))
		return "", fmt.Errorf("%s: replace: generation %d exists: %w", s, last, ErrConflict)
	}
	if !slices.Contains(gens, gen) {
		// Removed by hand (cleanup keeps it while next is the newest).
		_ = os.Remove(s.path(next))
		return "", fmt.Errorf("%s: replace: generation %d is gone: %w", s, gen, ErrConflict)
	}
	for _, g := range gens {
		if g > 1 && g <= next-fsKeep {
			_ = os.Remove(s.path(g)) // best effort: a leftover only takes space
		}
	}
	return version(next), nil
}

// link writes body as generation gen, or fails with ErrConflict if it exists.
func (s *fsStore) link(ctx context.Context, gen int64, body []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := os.MkdirAll(s.dir, 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(s.dir, "."+s.base+".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.Write(body)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write temp file: %w", err)
	}
	if err := os.Link(tmp.Name(), s.path(gen)); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("generation %d exists: %w", gen, ErrConflict)
		}
		return err
	}
	// The new name must survive a crash like the data did.
	d, err := os.Open(s.dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// generations lists the generations present, ascending.
func (s *fsStore) generations() ([]int64, error) {
	entries, err := os.ReadDir(s.dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var gens []int64
	for _, e := range entries { // sorted by name, and the names are zero-padded
		suffix, ok := strings.CutPrefix(e.Name(), s.base+".")
		if !ok {
			continue
		}
		if g, err := strconv.ParseInt(suffix, 10, 64); err == nil && g > 0 && len(suffix) == len(version(g)) {
			gens = append(gens, g)
		}
	}
	return gens, nil
}

func (s *fsStore) path(gen int64) string { return filepath.Join(s.dir, s.base+"."+version(gen)) }

func version(gen int64) string { return fmt.Sprintf("%019d", gen) }
