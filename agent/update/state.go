package update

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// maxStateBytes bounds the state file.
const maxStateBytes = 4096

// state is what the updater remembers across restarts.
type state struct {
	// Sequence is the highest announcement sequence decided.
	Sequence uint64 `json:"sequence"`
	// Installing is the version handed to the Installer for Sequence,
	// until its outcome is reported (after a restart, by the program
	// that then runs).
	Installing string `json:"installing,omitempty"`
}

func loadState(path string) (state, error) {
	if path == "" {
		return state{}, nil
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return state{}, nil
	}
	if err != nil {
		return state{}, fmt.Errorf("update state: %w", err)
	}
	if len(b) > maxStateBytes {
		return state{}, fmt.Errorf("update state %s is %d bytes; at most %d", path, len(b), maxStateBytes)
	}
	var s state
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s); err != nil {
		return state{}, fmt.Errorf("update state %s is corrupt: %w", path, err)
	}
	return s, nil
}

// remember raises the remembered sequence (never lowers it) and saves it
// atomically.
func (u *Updater) remember(seq uint64) error {
	return u.save(seq, "", false)
}

// save writes the state: a higher sequence (or the same, when clearing
// Installing with force) and the version being installed.
func (u *Updater) save(seq uint64, installing string, force bool) error {
	u.mu.Lock()
	defer u.mu.Unlock()
	if seq < u.state.Sequence || (seq == u.state.Sequence && !force) {
		return nil
	}
	next := state{Sequence: seq, Installing: installing}
	if p := u.cfg.StateFile; p != "" {
		b, _ := json.Marshal(next)
		f, err := os.CreateTemp(filepath.Dir(p), "."+filepath.Base(p)+".*")
		if err != nil {
			return fmt.Errorf("update state: %w", err)
		}
		_, werr := f.Write(b)
		if werr == nil {
			werr = f.Sync()
		}
		if cerr := f.Close(); werr == nil {
			werr = cerr
		}
		if werr == nil {
			werr = os.Rename(f.Name(), p)
		}
		if werr != nil {
			os.Remove(f.Name())
			return fmt.Errorf("update state: %w", werr)
		}
	}
	u.state = next
	return nil
}
