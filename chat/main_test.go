package chat_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package if a test leaves a goroutine behind: every
// session, connection and pusher must end at Shutdown.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
