// The source audio streams a task keeps (the ladder's audio policy: every stream, the first, or
// those in given languages), each decoded and encoded once to AAC. Every rung's MP4 carries them
// all; with HLS each also gets a CMAF rendition of its own (AudioRendition), which DASH shares.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "framepress/AudioRendition.h"
#include "framepress/AudioTranscoder.h"
#include "framepress/Demuxer.h"
#include "framepress/Timeline.h"
#include "framepress/options.h"

namespace fp {

class AudioTracks {
 public:
  // AAC packets of track `track` (their stream_index says so too).
  using Sink = std::function<void(int track, const AVPacket* aac)>;

  // Opens a transcoder for each stream the policy keeps; the demuxer stops reading the others.
  // `report` is what TranscodeResult::audio says: the default track's stream and format, and
  // every warning (streams dropped, not kept, converted).
  AudioTracks(Demuxer& demuxer, const AudioPolicy& policy, int64_t bitrate, const Timeline& timeline,
              AudioResult& report);

  // The streams (indexes) of `streams` that `policy` keeps, in source order, `best` being the
  // default one; a note in `warnings` when it leaves some out.
  static std::vector<int> select(const std::vector<AVStream*>& streams, int best, const AudioPolicy& policy,
                                 std::vector<std::string>& warnings);

  bool empty() const { return tracks_.empty(); }
  // The track a source stream feeds, -1 for none.
  int track_of(int stream_index) const;
  const AVStream* stream(int track) const { return tracks_[track].stream; }
  std::vector<const AVCodecContext*> encoders() const;
  std::vector<std::string> languages() const;  // by track, "" where the source has no tag

  // Decodes `pkt` of `track` (nullptr: end of stream) and hands AAC packets to `sink`.
  void push(int track, const AVPacket* pkt, const Sink& sink);
  // The default track's report, with every track's warnings.
  AudioResult report() const;

  // With HLS: a CMAF rendition per track, written by `write_rendition`.
  void open_renditions(const std::string& hls_dir, double segment_seconds);
  void write_rendition(int track, const AVPacket* aac);
  std::vector<AudioRenditionResult> finish_renditions();

 private:
  struct Track {
    const AVStream* stream;
    std::unique_ptr<AudioTranscoder> coder;
    std::unique_ptr<AudioRendition> rendition;
  };
  std::vector<Track> tracks_;
  int default_track_ = 0;
  std::vector<std::string> warnings_;  // of the selection and of the streams dropped
};

}  // namespace fp
