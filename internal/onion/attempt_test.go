package onion

import (
	"testing"
	"time"

	"github.com/umbra-im/umbra/internal/wire"
)

// TestAttemptTimeLongPoll: a long-polling read (retrieve or drop read)
// gets its wait on top of an attempt's time, other requests do not.
func TestAttemptTimeLongPoll(t *testing.T) {
	if got := attemptTime(wire.KindRetrieveReq, &wire.RetrieveReq{WaitMs: 20000}); got != attemptTimeout+20*time.Second {
		t.Errorf("retrieve long-poll: %s", got)
	}
	if got := attemptTime(wire.KindDropReq, &wire.DropReq{WaitMs: 20000}); got != attemptTimeout+20*time.Second {
		t.Errorf("drop long-poll: %s", got)
	}
	if got := attemptTime(wire.KindDropReq, &wire.DropReq{}); got != attemptTimeout {
		t.Errorf("drop read without wait: %s", got)
	}
	if got := attemptTime(wire.KindStoreReq, &wire.StoreReq{}); got != attemptTimeout {
		t.Errorf("store: %s", got)
	}
}
