#include "framepress/AudioTracks.h"

#include <algorithm>

#include "framepress/error.h"

namespace fp {

namespace {

// "" for none: "und" says nothing either.
std::string language_of(const AVStream* st) {
  const AVDictionaryEntry* lang = av_dict_get(st->metadata, "language", nullptr, 0);
  return lang && std::string(lang->value) != "und" ? lang->value : "";
}

std::string join(const std::vector<int>& items) {
  std::string out;
  for (int i : items) out += (out.empty() ? "" : ", ") + std::to_string(i);
  return out;
}

}  // namespace

std::vector<int> AudioTracks::select(const std::vector<AVStream*>& streams, int best, const AudioPolicy& policy,
                                     std::vector<std::string>& warnings) {
  std::vector<int> audio, keep;
  for (const AVStream* st : streams) audio.push_back(st->index);
  if (policy.keep == "languages") {
    for (const AVStream* st : streams)
      if (std::count(policy.languages.begin(), policy.languages.end(), language_of(st))) keep.push_back(st->index);
    if (keep.empty() && best >= 0) {
      keep = {best};
      std::string wanted;
      for (const auto& l : policy.languages) wanted += (wanted.empty() ? "" : ", ") + l;
      warnings.push_back("no audio stream is in " + wanted + "; stream " + std::to_string(best) + " is kept");
      return keep;
    }
  } else if (policy.keep == "first") {
    if (best >= 0) keep = {best};
  } else {
    keep = audio;
  }
  if (keep.size() < audio.size())
    warnings.push_back("the source has " + std::to_string(audio.size()) + " audio streams; " +
                       (keep.size() == 1 ? "only stream " + join(keep) + " is kept" : "streams " + join(keep) + " are kept"));
  return keep;
}

AudioTracks::AudioTracks(Demuxer& demuxer, const AudioPolicy& policy, int64_t bitrate, const Timeline& timeline,
                         AudioResult& report) {
  const std::vector<AVStream*> streams = demuxer.audio_streams();
  const std::vector<int> keep = select(streams, demuxer.audio_index(), policy, warnings_);
  for (AVStream* st : streams) {
    if (std::find(keep.begin(), keep.end(), st->index) == keep.end()) {
      st->discard = AVDISCARD_ALL;
      continue;
    }
    AudioResult opened;
    auto coder = AudioTranscoder::open(st, bitrate, timeline, opened);
    if (!coder) {  // nothing here decodes it: dropped, with the reason
      st->discard = AVDISCARD_ALL;
      warnings_.insert(warnings_.end(), opened.warnings.begin(), opened.warnings.end());
      continue;
    }
    if (st->index == demuxer.audio_index()) default_track_ = static_cast<int>(tracks_.size());
    tracks_.push_back({st, std::move(coder), nullptr});
  }
  report = this->report();
}

int AudioTracks::track_of(int stream_index) const {
  for (size_t t = 0; t < tracks_.size(); ++t)
    if (tracks_[t].stream->index == stream_index) return static_cast<int>(t);
  return -1;
}

std::vector<const AVCodecContext*> AudioTracks::encoders() const {
  std::vector<const AVCodecContext*> out;
  for (const auto& t : tracks_) out.push_back(t.coder->encoder());
  return out;
}

std::vector<std::string> AudioTracks::languages() const {
  std::vector<std::string> out;
  for (const auto& t : tracks_) out.push_back(language_of(t.stream));
  return out;
}

void AudioTracks::push(int track, const AVPacket* pkt, const Sink& sink) {
  tracks_[track].coder->push(pkt, [&](const AVPacket* aac) { sink(track, aac); });
}

AudioResult AudioTracks::report() const {
  AudioResult r;
  if (!tracks_.empty()) r = tracks_[default_track_].coder->report();
  std::vector<std::string> warnings = warnings_;
  for (size_t t = 0; t < tracks_.size(); ++t) {
    if (static_cast<int>(t) == default_track_) {
      warnings.insert(warnings.end(), r.warnings.begin(), r.warnings.end());
      continue;
    }
    for (const auto& w : tracks_[t].coder->report().warnings)
      warnings.push_back("audio stream " + std::to_string(tracks_[t].stream->index) + ": " + w);
  }
  r.warnings = std::move(warnings);
  return r;
}

void AudioTracks::open_renditions(const std::string& hls_dir, double segment_seconds) {
  for (size_t t = 0; t < tracks_.size(); ++t) {
    const AVCodecContext* enc = tracks_[t].coder->encoder();
    AudioRenditionResult d;
    d.index = tracks_[t].stream->index;
    d.language = language_of(tracks_[t].stream);
    d.is_default = static_cast<int>(t) == default_track_;
    d.sample_rate = enc->sample_rate;
    d.channels = enc->ch_layout.nb_channels;
    tracks_[t].rendition =
        std::make_unique<AudioRendition>(hls_dir, "audio_" + std::to_string(t), enc, segment_seconds, d);
  }
}

void AudioTracks::write_rendition(int track, const AVPacket* aac) {
  if (tracks_[track].rendition) tracks_[track].rendition->write(aac);
}

std::vector<AudioRenditionResult> AudioTracks::finish_renditions() {
  std::vector<AudioRenditionResult> out;
  for (auto& t : tracks_) {
    if (!t.rendition) continue;
    t.rendition->finish();
    out.push_back(t.rendition->result());
  }
  return out;
}

}  // namespace fp
