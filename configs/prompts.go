package configs

import "embed"

// Prompts holds the built-in Simplified Chinese call prompts as 8 kHz mono
// 16-bit WAV files, prompts/NAME.wav, made by scripts/make-prompts.sh. The
// sip.prompts config key replaces any of them with the admin's own file.
//
//go:embed prompts/*.wav
var Prompts embed.FS
