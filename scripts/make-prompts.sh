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

say() { # say NAME TEXT
	espeak-ng -v cmn -s 165 -w "$tmp/$1.raw.wav" "$2"
	# 8 kHz mono 16-bit, trimmed of leading/trailing silence, a little
	# quieter than full scale, 100 ms of silence at the end.
	sox "$tmp/$1.raw.wav" -r 8000 -c 1 -b 16 "$out/$1.wav" \
		silence 1 0.02 0.5% reverse silence 1 0.02 0.5% reverse gain -n -3 pad 0 0.1
}

say welcome      "您好，欢迎致电网上办税技术咨询热线。"
say position     "您前面还有"
say people       "位来电者。"
say wait         "预计等待时间约"
say minutes      "分钟。"
say queued       "坐席正忙，请稍候。"
say after_hours  "您好，现在是非服务时间。服务时间为周一至周六，八点半至二十一点，法定节假日除外。请在提示音后留言，我们将在一个工作日内处理。"
say survey       "请对本次服务进行评价，非常满意请按五，满意请按四，一般请按三，不满意请按二，非常不满意请按一。"
say closing      "感谢您的来电，再见。"
say transfer     "您的问题不属于本热线受理范围，正在为您转接。"

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
