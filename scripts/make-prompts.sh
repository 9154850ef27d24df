#!/bin/sh
# make-prompts.sh: generates taxline's built-in Simplified Chinese call
# prompts into configs/prompts/ as 8 kHz mono 16-bit WAV (what the SIP
# gateway plays; see sip/prompts.go for how they are used).
#
# Needs Debian's espeak-ng (Mandarin voice "cmn") and sox:
#   apt-get install -y espeak-ng sox
# Run from the repository root: scripts/make-prompts.sh
set -eu
out=configs/prompts
mkdir -p "$out"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# Callers wait through every second of a prompt, so they are spoken fast
# (espeak-ng -s 220 words per minute, still clear for Mandarin), worded
# tightly, and sox trims the silence at both ends and shortens every pause
# inside to at most 0.15 s.
say() { # say NAME TEXT
	espeak-ng -v cmn -s 220 -w "$tmp/$1.raw.wav" "$2"
	# 8 kHz mono 16-bit, a little quieter than full scale, 80 ms of
	# silence at the end.
	sox "$tmp/$1.raw.wav" -r 8000 -c 1 -b 16 "$out/$1.wav" \
		silence -l 1 0.02 0.5% -1 0.15 0.5% \
		reverse silence 1 0.02 0.5% reverse gain -n -3 pad 0 0.08
}

say welcome      "您好，欢迎致电办税技术热线。"
say position     "您前面还有"
say people       "位来电者。"
say wait         "预计等待约"
say minutes      "分钟。"
say queued       "坐席正忙，请稍候。"
say after_hours  "现在是非服务时间。服务时间为周一至周六，八点半至晚九点，节假日除外。请在提示音后留言。"
say survey       "请评价本次服务：非常满意按五，满意按四，一般按三，不满意按二，很不满意按一。"
say closing      "感谢来电，再见。"
say transfer     "您的问题不在本热线受理范围，正在为您转接。"

# Numbers for position and wait announcements: 0 to 20; above 20 the
# gateway says "20" followed by nothing more precise.
nums="零 一 二 三 四 五 六 七 八 九 十 十一 十二 十三 十四 十五 十六 十七 十八 十九 二十"
i=0
for n in $nums; do
	say "num_$i" "$n"
	i=$((i + 1))
done

# Hold music: a soft repeating arpeggio (C major), 8 s, and the voicemail beep.
sox -n -r 8000 -c 1 -b 16 "$out/hold_music.wav" \
	synth 0.5 sine 523.25 synth 0.5 sine 659.25 : synth 0.5 sine 783.99 : synth 0.5 sine 659.25 \
	gain -18 fade 0.05 0.5 0.05 repeat 3 2>/dev/null || \
sox -n -r 8000 -c 1 -b 16 "$out/hold_music.wav" synth 8 sine 440 gain -20 tremolo 2 80
sox -n -r 8000 -c 1 -b 16 "$out/voicemail_beep.wav" synth 0.4 sine 1000 gain -6

ls -l "$out"
