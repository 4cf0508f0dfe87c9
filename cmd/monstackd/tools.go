package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/alecthomas/kingpin/v2"
	"github.com/go-kit/log"

	"github.com/monstackd/monstackd/pkg/components/buckettools"
	"github.com/monstackd/monstackd/pkg/logging"
)

// toolsFlags are the flags of `monstackd tools bucket …`.
type toolsFlags struct {
	objstoreFile     string
	timeout          time.Duration
	output           string
	selector         []string
	partialUploadAge time.Duration
}

// toolsCmds are the `tools bucket` subcommands, by full command name.
type toolsCmds struct {
	ls, inspect, verify *kingpin.CmdClause
}

func registerTools(app *kingpin.Application, tf *toolsFlags) toolsCmds {
	tools := app.Command("tools", "Tools for the bucket tier, as `thanos tools`.")
	bucket := tools.Command("bucket", "Read the bucket monstack.yml configures (or --objstore.config-file): list, inspect and verify its blocks. Read-only.")
	bucket.Flag("objstore.config-file", "Thanos objstore config (bucket.yml); given, it wins over monstack.yml's bucket.").
		Default("").StringVar(&tf.objstoreFile)
	bucket.Flag("timeout", "Give up on the bucket after this long.").Default("5m").DurationVar(&tf.timeout)

	var c toolsCmds
	c.ls = bucket.Command("ls", "One line per block: ULID, min and max time, resolution, compaction level, source, external labels.")
	c.ls.Flag("output", "Output: text, or json (one meta.json per line).").Short('o').Default(string(buckettools.FormatText)).
		EnumVar(&tf.output, string(buckettools.FormatText), string(buckettools.FormatJSON))
	c.inspect = bucket.Command("inspect", "A table of the blocks and their stats, as `thanos tools bucket inspect`.")
	c.inspect.Flag("selector", "Show only blocks with this external label, name=value or name=\"value\"; repeatable.").
		Short('l').StringsVar(&tf.selector)
	c.verify = bucket.Command("verify", "Run Thanos' verifiers (overlapped blocks, index known issues, duplicated compaction) and look for aborted partial uploads; "+
		"no repair. Exit 1 listing each problem.")
	c.verify.Flag("partial-upload-age", "A block without meta.json not written to for longer than this is an aborted upload (the compactor deletes those).").
		Default(buckettools.DefaultPartialUploadAge.String()).DurationVar(&tf.partialUploadAge)
	return c
}

// runTools runs one `tools bucket` subcommand and returns the exit code.
func runTools(cmd string, c toolsCmds, f flags, tf toolsFlags, stdout, stderr io.Writer) int {
	sel, err := buckettools.ParseSelector(tf.selector)
	if err != nil {
		fmt.Fprintf(stderr, "%s: flag --selector: %s\n", appName, err)
		return 2
	}
	content, where, err := bucketConfig(f, tf)
	if err != nil {
		fmt.Fprintf(stderr, "FAILED: %s\n", err)
		return 1
	}
	// The Thanos code logs at info what the commands print; its lines show
	// with --log.level=debug only.
	logger := log.NewNopLogger()
	if f.logLevel == "debug" {
		if logger, err = logging.New(stderr, f.logLevel, f.logFormat); err != nil {
			fmt.Fprintf(stderr, "%s: %s\n", appName, err)
			return 2
		}
	}
	t, err := buckettools.New(buckettools.Options{Config: content, Where: where, Logger: logger})
	if err != nil {
		fmt.Fprintf(stderr, "FAILED: %s\n", err)
		return 1
	}
	defer t.Close()
	ctx, cancel := context.WithTimeout(context.Background(), tf.timeout)
	defer cancel()

	switch cmd {
	case c.verify.FullCommand():
		problems, err := t.Verify(ctx, buckettools.VerifyOptions{PartialUploadAge: tf.partialUploadAge})
		if err != nil {
			fmt.Fprintf(stderr, "FAILED: %s\n", err)
			return 1
		}
		for _, p := range problems {
			fmt.Fprintf(stderr, "FAILED: %s\n", p)
		}
		if len(problems) > 0 {
			fmt.Fprintf(stderr, "FAILED: %d problem(s) in the bucket\n", len(problems))
			return 1
		}
		fmt.Fprintln(stdout, "SUCCESS: no overlapped blocks, index issues, duplicated compactions or aborted partial uploads")
		return 0
	}

	metas, err := t.Blocks(ctx)
	if err != nil {
		fmt.Fprintf(stderr, "FAILED: %s\n", err)
		return 1
	}
	switch cmd {
	case c.ls.FullCommand():
		err = buckettools.Ls(stdout, metas, buckettools.Format(tf.output))
	case c.inspect.FullCommand():
		err = buckettools.Inspect(stdout, metas, sel)
	}
	if err != nil {
		fmt.Fprintf(stderr, "FAILED: %s\n", err)
		return 1
	}
	return 0
}

// bucketConfig returns the objstore YAML and where it comes from, in
// BucketYAML's form: --objstore.config-file, else monstack.yml's bucket
// (bucket.yml, the inline fields, or the FILESYSTEM bucket under --data.dir).
func bucketConfig(f flags, tf toolsFlags) ([]byte, string, error) {
	if tf.objstoreFile != "" {
		b, err := os.ReadFile(tf.objstoreFile)
		if err != nil {
			return nil, "", fmt.Errorf("flag --objstore.config-file: %w", err)
		}
		return b, tf.objstoreFile + ": field ", nil
	}
	role, cfg, err := load(f)
	if err != nil {
		return nil, "", err
	}
	b, where, err := cfg.BucketYAML(runtime(f, role))
	if err != nil {
		return nil, "", fmt.Errorf("%s%w", where, err)
	}
	return b, where, nil
}
