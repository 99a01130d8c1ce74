// Command fakeagent stands in for a new agentgate-agent build in the
// installer's tests; its behaviour is fixed at build time
// (-ldflags "-X main.mode=... -X main.version=...").
package main

import (
	"os"
	"os/signal"
	"syscall"
)

var (
	mode    = "healthy" // healthy, crash, hang
	version = "0.0.0"
)

func main() {
	term := make(chan os.Signal, 1)
	signal.Notify(term, syscall.SIGTERM)
	switch mode {
	case "crash":
		os.Exit(3)
	case "healthy":
		if p := os.Getenv("AGENTGATE_UPDATE_HEALTH_FILE"); p != "" {
			if err := os.WriteFile(p, []byte(version+"\n"), 0o600); err != nil {
				os.Exit(4)
			}
		}
	}
	<-term
}
