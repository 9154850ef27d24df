// Package chat is taxline's web chat gateway: the WebSocket protocol that
// taxpayers (/ws/chat) and agents (/ws/agent) speak, the chat sessions with
// delivery, acknowledgements and resume, and the limits that keep one bad or
// slow connection from hurting anyone else.
//
// The gateway decides nothing about routing or timing. It offers each chat to
// the router (queue.Router), reports every message with Router.Activity so
// the router's timers can run the rules of RULES.md C2–C5, and carries out
// what the router asks through queue.Handler: ring an agent's desk, show the
// holding message (C3), prompt the agent and offer the taxpayer the choice
// (C4), remind and close (C5), take a web message after hours (M2).
//
// Each chat session is owned by one goroutine; each connection has one reader
// goroutine and one writer goroutine with a bounded send queue. A connection
// whose queue fills (a slow client) is closed with a reason, never waited
// for. The frames are described in docs/CHAT.md.
package chat
