// Package sip is taxline's SIP gateway: the trunks that bring taxpayers'
// calls in (P1), the agents' registrar, and a back-to-back user agent that
// answers every call, plays the prompts, puts it into the router's queue,
// rings the agent the router picks and relays the audio both ways with the
// media anchored here (package sip/media), recording each answered call,
// taking voice messages after hours (M2) and running the keypad survey
// (S6, P5).
//
// SIP itself (parsing, transactions, transports) is github.com/emiago/sipgo.
package sip
