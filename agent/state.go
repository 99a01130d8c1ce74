package agent

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/agentgate/agentgate/contract/envelope"
	"github.com/agentgate/agentgate/contract/topics"
)

// loadState reads the last applied envelope; a missing file is no state.
func loadState(path string) (envelope.Envelope, error) {
	if path == "" {
		return envelope.Envelope{}, nil
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return envelope.Envelope{}, nil
	}
	if err != nil {
		return envelope.Envelope{}, fmt.Errorf("state file: %w", err)
	}
	if len(b) > topics.MaxMessageBytes {
		return envelope.Envelope{}, fmt.Errorf("state file %s is %d bytes; at most %d expected", path, len(b), topics.MaxMessageBytes)
	}
	env, err := envelope.Parse(b)
	if err != nil {
		return envelope.Envelope{}, fmt.Errorf("state file %s is corrupt (delete it to accept the retained config again): %w", path, err)
	}
	return env, nil
}

// saveState replaces path atomically: a crash leaves the old or the new
// envelope, never a torn one.
func saveState(path string, raw []byte) error {
	if path == "" {
		return nil
	}
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("state file: %w", err)
	}
	tmp := f.Name()
	_, werr := f.Write(raw)
	if werr == nil {
		werr = f.Sync()
	}
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr == nil {
		werr = os.Rename(tmp, path)
	}
	if werr != nil {
		os.Remove(tmp)
		return fmt.Errorf("state file: %w", werr)
	}
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}
