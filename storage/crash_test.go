package storage_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/taxline/taxline/interaction"
	"github.com/taxline/taxline/storage"
)

// crashDirEnv tells the re-executed test binary to act as the crash child.
const crashDirEnv = "TAXLINE_STORAGE_CRASH_DIR"

// TestCrashChild is the child process of TestCrash: it streams interactions
// into the store with Append and prints "ack SEQ ID TYPE" for every event
// once Append has returned (that is, once it is fsynced). It only runs when
// re-executed by TestCrash, which kills it with SIGKILL.
func TestCrashChild(t *testing.T) {
	dir := os.Getenv(crashDirEnv)
	if dir == "" {
		t.Skip("only runs as TestCrash's child")
	}
	db, err := storage.Open(dir, storage.Options{})
	if err != nil {
		fmt.Printf("error %v\n", err)
		os.Exit(2)
	}
	var out sync.Mutex
	var wg sync.WaitGroup
	const producers = 8
	for p := range producers {
		wg.Go(func() {
			// Bounded: the parent kills us long before this ends.
			for n := range 20000 {
				at := time.Now().UTC()
				id := interaction.NewID(at)
				agent := strconv.Itoa(1001 + p)
				for _, ev := range []interaction.Event{
					{Type: interaction.Offered, At: at, ID: id, Channel: interaction.Chat, Queue: "etax", Actor: interaction.ActorTaxpayer},
					{Type: interaction.RingStarted, At: at, ID: id, Agent: agent, Actor: interaction.ActorSystem},
					{Type: interaction.Answered, At: at, ID: id, Agent: agent, Actor: interaction.AgentActor(agent)},
					{Type: interaction.ChatMessage, At: at, ID: id, Actor: interaction.ActorTaxpayer, Data: map[string]string{"text": "发票开不出来", "n": strconv.Itoa(n)}},
					{Type: interaction.ChatMessage, At: at, ID: id, Actor: interaction.AgentActor(agent), Data: map[string]string{"text": "请稍等", "n": strconv.Itoa(n)}},
					{Type: interaction.Ended, At: at, ID: id, Actor: interaction.AgentActor(agent), Reason: interaction.ReasonCompleted, Disposition: interaction.Resolved},
				} {
					seqs, err := storage.AppendSeq(context.Background(), db, ev)
					if err != nil {
						fmt.Printf("error %v\n", err)
						os.Exit(2)
					}
					out.Lock()
					fmt.Printf("ack %d %s %s\n", seqs[0], id, ev.Type)
					out.Unlock()
				}
			}
		})
	}
	wg.Wait()
	fmt.Println("error: child finished without being killed")
	os.Exit(2)
}

type ack struct {
	seq uint64
	id  interaction.ID
	typ string
}

// runCrashChild starts the child on dir, reads at least want acks, kills it
// with SIGKILL, and returns every ack it printed (including those read after
// the kill: they were printed after the events were durable).
func runCrashChild(t *testing.T, dir string, want int) []ack {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashDirEnv+"="+dir)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Bound the whole run: a child that never reaches want acks is killed.
	guard := time.AfterFunc(30*time.Second, func() { _ = syscall.Kill(cmd.Process.Pid, syscall.SIGKILL) })
	defer guard.Stop()

	var acks []ack
	killed := false
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 0 {
			continue
		}
		if f[0] == "error" {
			t.Errorf("child: %s", sc.Text())
			continue
		}
		if f[0] != "ack" || len(f) != 4 {
			continue // the test framework's own lines
		}
		seq, err := strconv.ParseUint(f[1], 10, 64)
		if err != nil {
			t.Fatalf("bad ack line %q", sc.Text())
		}
		acks = append(acks, ack{seq, interaction.ID(f[2]), f[3]})
		if !killed && len(acks) >= want {
			if err := syscall.Kill(cmd.Process.Pid, syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			killed = true
		}
	}
	err = cmd.Wait()
	if !killed {
		t.Fatalf("child ended before %d acks (%d): %v\n%s", want, len(acks), err, stderr.String())
	}
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("child did not die of SIGKILL: %v", err)
	}
	return acks
}

// TestCrash kills a process that is streaming events into the store, five
// times, and checks after each restart that the store opens, that every
// event acknowledged as durable is there, and that every interaction that
// was live is closed with ReasonSystemRestart.
func TestCrash(t *testing.T) {
	dir := t.TempDir()
	start := time.Now()
	for round := range 5 {
		if testing.Short() && round > 0 && time.Since(start) > time.Second {
			t.Logf("-short: stopping after %d rounds (%v)", round, time.Since(start))
			break
		}
		acks := runCrashChild(t, dir, 200+100*round)

		var logs bytes.Buffer
		restart := time.Now()
		db, err := storage.Open(dir, storage.Options{
			Logger: slog.New(slog.NewTextHandler(&logs, nil)),
			Now:    func() time.Time { return restart },
		})
		if err != nil {
			t.Fatalf("round %d: reopen after kill -9: %v", round, err)
		}
		if !strings.Contains(logs.String(), "not clean") {
			t.Errorf("round %d: no consistency check after an unclean stop; log:\n%s", round, logs.String())
		}

		// Every acknowledged event is there, as it was sent.
		ended := map[interaction.ID]bool{}
		ids := map[interaction.ID]bool{}
		for _, a := range acks {
			ev, err := storage.EventBySeq(db, a.seq)
			if err != nil {
				t.Fatalf("round %d: acknowledged event %d lost: %v", round, a.seq, err)
			}
			if ev.ID != a.id || ev.Type.String() != a.typ {
				t.Fatalf("round %d: event %d is %s %s, acknowledged as %s %s", round, a.seq, ev.ID, ev.Type, a.id, a.typ)
			}
			ids[a.id] = true
			if a.typ == interaction.Ended.String() {
				ended[a.id] = true
			}
		}

		// Every interaction that was live is now closed, with a reason.
		recovered := map[interaction.ID]bool{}
		for _, r := range db.Recovered() {
			recovered[r.ID] = true
			if r.State != interaction.StateEnded || r.Reason != interaction.ReasonSystemRestart || !r.EndedAt.Equal(restart) {
				t.Errorf("round %d: recovered %s: %v %v %v", round, r.ID, r.State, r.Reason, r.EndedAt)
			}
		}
		if len(recovered) == 0 {
			t.Errorf("round %d: nothing was live at the kill (8 producers were mid-interaction)", round)
		}
		for id := range ids {
			r, err := db.Interaction(id)
			if err != nil {
				t.Fatalf("round %d: %s: %v", round, id, err)
			}
			if r.Live() {
				t.Errorf("round %d: %s still live after restart", round, id)
			}
			evs, err := db.Events(id)
			if err != nil {
				t.Fatal(err)
			}
			n := 0
			for _, ev := range evs {
				if ev.Type == interaction.Ended {
					n++
				}
			}
			last := evs[len(evs)-1]
			switch {
			case n != 1:
				t.Errorf("round %d: %s has %d Ended events", round, id, n)
			case ended[id] && r.Reason != interaction.ReasonCompleted:
				t.Errorf("round %d: %s ended normally but has reason %v", round, id, r.Reason)
			case !ended[id] && recovered[id]:
				if last.Type != interaction.Ended || last.Reason != interaction.ReasonSystemRestart || last.Actor != interaction.ActorSystem {
					t.Errorf("round %d: %s: last event %+v", round, id, last)
				}
			case !ended[id]:
				// Its Ended was committed but the kill came before the ack.
				if r.Reason != interaction.ReasonCompleted {
					t.Errorf("round %d: %s neither recovered nor completed: %+v", round, id, r)
				}
			}
		}
		if live, _ := storage.LiveIDs(db); len(live) != 0 {
			t.Errorf("round %d: live set after recovery: %v", round, live)
		}
		t.Logf("round %d: %d acks, %d interactions, %d closed by recovery", round, len(acks), len(ids), len(recovered))
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
	}
}
