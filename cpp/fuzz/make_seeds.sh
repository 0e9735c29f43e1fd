#!/usr/bin/env bash
# Writes the fuzz target's seed corpus into DIR: tiny clips (64x48, a few frames, with audio where
# the container takes it) in each container and codec family the engine accepts.
set -euo pipefail
dir=${1:?usage: make_seeds.sh DIR}
mkdir -p "$dir"
video="testsrc2=size=64x48:rate=25:duration=0.4"
audio="sine=frequency=440:sample_rate=22050:duration=0.4"
seed() {  # seed NAME [ffmpeg output options...]
  local name=$1
  shift
  ffmpeg -y -loglevel error -f lavfi -i "$video" -f lavfi -i "$audio" "$@" "$dir/$name"
}
seed h264-aac.mp4 -c:v libx264 -preset ultrafast -c:a aac -b:a 24k
seed h264-aac-fragmented.mp4 -c:v libx264 -preset ultrafast -c:a aac -b:a 24k -movflags frag_keyframe+empty_moov
seed h264-aac.mov -c:v libx264 -preset ultrafast -bf 2 -c:a aac -b:a 24k
seed h264-mp3.mkv -c:v libx264 -preset ultrafast -c:a libmp3lame -b:a 32k
seed hevc-opus.mkv -c:v libx265 -preset ultrafast -x265-params log-level=none -c:a libopus -b:a 16k
seed vp9-opus.webm -c:v libvpx-vp9 -deadline realtime -b:v 50k -c:a libopus -b:a 16k
seed vp8-vorbis.webm -c:v libvpx -deadline realtime -b:v 50k -c:a libvorbis
seed mpeg2-mp2.ts -c:v mpeg2video -c:a mp2 -b:a 32k
seed h264-ac3.ts -c:v libx264 -preset ultrafast -c:a ac3 -b:a 64k
seed mpeg1-mp2.mpg -c:v mpeg1video -c:a mp2 -b:a 32k
seed mjpeg-pcm.avi -c:v mjpeg -c:a pcm_s16le
seed mpeg4-mp3.avi -c:v mpeg4 -c:a libmp3lame -b:a 32k
seed flv1-mp3.flv -c:v flv -c:a libmp3lame -b:a 32k
seed ffv1-flac.nut -c:v ffv1 -c:a flac
seed theora-vorbis.ogg -c:v libtheora -c:a libvorbis
seed av1.ivf -an -c:v libaom-av1 -cpu-used 8 -b:v 50k
seed h264.h264 -an -c:v libx264 -preset ultrafast
seed rawvideo.y4m -an -pix_fmt yuv420p
ls "$dir" | wc -l
