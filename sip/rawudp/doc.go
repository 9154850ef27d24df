// Package rawudp does UDP I/O with raw, non-blocking system calls.
//
// The standard library's UDP reads and writes go through the scheduler's
// system-call hand-off (entersyscall/exitsyscall). That is right for calls
// that may block, but a send or receive on a non-blocking UDP socket never
// does, and at thousands of datagrams a second the hand-off kept waking
// the runtime's monitor thread (sysmon) for each: a fifth of the SIP
// listener's CPU in a profile. Conn wraps a *net.UDPConn and does its
// reads and writes as raw system calls inside the runtime's poller
// (syscall.RawConn), which still parks the goroutine when there is
// nothing to read or no room to write. Sockaddr and AddrPort convert
// between netip and the kernel's socket addresses for code that owns raw
// descriptors (sip/media).
//
// On platforms other than Linux, Conn falls back to the standard methods.
package rawudp
