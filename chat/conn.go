package chat

import (
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
	"golang.org/x/time/rate"

	"github.com/taxline/taxline/config"
)

// writeWait bounds one frame write; a peer that cannot take a frame in
// this time is gone.
const writeWait = 10 * time.Second

// Close reasons counted apart.
const (
	reasonSlow   = "slow client: send queue full"
	reasonTooBig = "frame too large"
)

// closeError ends a connection with a WebSocket close code and a reason
// (RFC 6455 §7.4). Reasons are short ASCII: a close frame carries at most
// 123 bytes of reason.
type closeError struct {
	code   int
	reason string
}

func (e *closeError) Error() string { return "chat: " + e.reason }

// policy returns a 1008 (policy violation) close error.
func policy(reason string) error {
	return &closeError{websocket.ClosePolicyViolation, reason}
}

// conn is one WebSocket connection. Its reader goroutine (readLoop) is the
// only reader and its writer goroutine (writeLoop) the only writer of data
// frames; everyone else hands frames to send, which never blocks: when the
// bounded queue is full the client is too slow and is dropped.
type conn struct {
	ws      *websocket.Conn
	limits  config.ChatLimits
	limiter *rate.Limiter
	log     *slog.Logger

	out  chan []byte   // frames for writeLoop; bounded by limits.SendQueue
	done chan struct{} // closed once the connection is closing

	once   sync.Once
	code   int           // close code, 0 for none; written before done is closed
	reason string        // close reason; written before done is closed
	flush  bool          // send queued frames before the close frame
	closed chan struct{} // closed when writeLoop has returned
	stats  *counters     // the server's, for Stats
}

// counters are the gateway's running totals.
type counters struct {
	slow   atomic.Uint64 // dropped for a full send queue
	policy atomic.Uint64 // closed for a limit or a bad frame
}

func newConn(ws *websocket.Conn, limits config.ChatLimits, log *slog.Logger, stats *counters) *conn {
	return &conn{
		stats:   stats,
		ws:      ws,
		limits:  limits,
		limiter: rate.NewLimiter(rate.Limit(limits.RatePerSecond), limits.Burst),
		log:     log,
		out:     make(chan []byte, limits.SendQueue),
		done:    make(chan struct{}),
		closed:  make(chan struct{}),
	}
}

// send queues one frame. It reports false when the connection is closing
// or was just closed for being too slow.
func (c *conn) send(f Frame) bool {
	return c.sendRaw(encodeFrame(f))
}

func (c *conn) sendRaw(b []byte) bool {
	select {
	case <-c.done:
		return false
	default:
	}
	select {
	case c.out <- b:
		return true
	default:
		c.close(websocket.ClosePolicyViolation, reasonSlow, false)
		return false
	}
}

// close starts closing the connection with code and reason. With flush,
// frames already queued are written first (a normal end); without, they
// are dropped (a slow or misbehaving client). Only the first call counts.
func (c *conn) close(code int, reason string, flush bool) {
	c.once.Do(func() {
		c.code, c.reason, c.flush = code, reason, flush
		switch {
		case code == websocket.ClosePolicyViolation && reason == reasonSlow:
			c.stats.slow.Add(1)
		case code == websocket.ClosePolicyViolation || code == websocket.CloseUnsupportedData ||
			code == websocket.CloseInvalidFramePayloadData || code == websocket.CloseMessageTooBig ||
			reason == reasonTooBig:
			c.stats.policy.Add(1)
		}
		if reason != "" {
			c.log.Debug("websocket closing", "code", code, "reason", reason)
		}
		if reason == reasonSlow {
			// The writer may be blocked on the full socket: cut that write
			// short now instead of waiting out writeWait.
			_ = c.ws.NetConn().SetWriteDeadline(time.Now())
		}
		close(c.done)
	})
}

// writeLoop is the connection's only writer. It returns, closing the
// socket, when the connection closes or a write fails.
func (c *conn) writeLoop() {
	defer close(c.closed)
	defer c.ws.Close()
	ping := time.NewTicker(c.limits.PingInterval)
	defer ping.Stop()
	for {
		select {
		case b := <-c.out:
			if err := c.write(b); err != nil {
				c.close(0, "", false)
				return
			}
		case <-ping.C:
			if err := c.ws.WriteControl(websocket.PingMessage, nil, time.Now().Add(writeWait)); err != nil {
				c.close(0, "", false)
				return
			}
		case <-c.done:
			if c.flush {
				for pending := true; pending; {
					select {
					case b := <-c.out:
						if c.write(b) != nil {
							return
						}
					default:
						pending = false
					}
				}
			}
			if c.code != 0 {
				msg := websocket.FormatCloseMessage(c.code, c.reason)
				_ = c.ws.WriteControl(websocket.CloseMessage, msg, time.Now().Add(time.Second))
			}
			return
		}
	}
}

func (c *conn) write(b []byte) error {
	_ = c.ws.SetWriteDeadline(time.Now().Add(writeWait))
	return c.ws.WriteMessage(websocket.TextMessage, b)
}

// readLoop is the connection's only reader. It applies the frame-size,
// rate and liveness limits, decodes each frame and passes it to handle; a
// handler error of type *closeError closes the socket with that code. It
// returns when the connection is done.
func (c *conn) readLoop(handle func(Frame) error) {
	c.ws.SetReadLimit(c.limits.MaxFrameBytes)
	_ = c.ws.SetReadDeadline(time.Now().Add(c.limits.PongTimeout))
	c.ws.SetPongHandler(func(string) error {
		return c.ws.SetReadDeadline(time.Now().Add(c.limits.PongTimeout))
	})
	for {
		mt, b, err := c.ws.ReadMessage()
		if err != nil {
			switch {
			case errors.Is(err, websocket.ErrReadLimit):
				// gorilla has already sent the 1009 close frame.
				c.close(0, reasonTooBig, false)
			default:
				// The peer closed or vanished: nothing more to write.
				c.close(0, "", false)
			}
			return
		}
		_ = c.ws.SetReadDeadline(time.Now().Add(c.limits.PongTimeout))
		if !c.limiter.Allow() {
			c.close(websocket.ClosePolicyViolation, "rate limit exceeded", false)
			return
		}
		if mt != websocket.TextMessage {
			c.close(websocket.CloseUnsupportedData, "binary frames are not accepted", false)
			return
		}
		f, err := decodeFrame(b)
		if err != nil {
			code := websocket.CloseUnsupportedData
			if errors.Is(err, errBadUTF8) {
				code = websocket.CloseInvalidFramePayloadData
			}
			c.close(code, truncate(err.Error(), 120), false)
			return
		}
		if err := handle(f); err != nil {
			var ce *closeError
			if errors.As(err, &ce) {
				c.close(ce.code, truncate(ce.reason, 120), false)
			} else {
				c.close(websocket.CloseInternalServerErr, "internal error", false)
			}
			return
		}
	}
}

// truncate cuts s to at most n bytes on a rune boundary.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && s[n]&0xc0 == 0x80 {
		n--
	}
	return s[:n]
}
