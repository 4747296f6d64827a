#include "http/event_stream.hpp"

#include <algorithm>

namespace pxedust::http {

std::string EventStream::frame(std::string_view event, std::string_view data) {
  std::string out;
  out.reserve(data.size() + event.size() + 32);
  out += "event: ";
  out += event;
  out += '\n';
  std::size_t start = 0;
  while (start <= data.size()) {
    auto end = data.find('\n', start);
    if (end == std::string_view::npos) end = data.size();
    auto line = data.substr(start, end - start);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (!(end == data.size() && line.empty() && start > 0)) {  // no empty data: line for a final '\n'
      out += "data: ";
      out += line;
      out += '\n';
    }
    start = end + 1;
  }
  out += '\n';
  return out;
}

void EventStream::publish(std::string event, std::shared_ptr<const std::string> data) {
  event_ = std::move(event);
  data_ = std::move(data);
  latest_.reset();
  ++version_;
  wakeAll();
}

const std::shared_ptr<const std::string>& EventStream::latest() {
  if (data_ && (!latest_ || latestVersion_ != version_)) {
    latest_ = std::make_shared<const std::string>(frame(event_, *data_));
    latestVersion_ = version_;
  }
  return latest_;
}

void EventStream::close() {
  closed_ = true;
  wakeAll();
}

void EventStream::follow(const std::shared_ptr<asio::steady_timer>& wake) {
  std::erase_if(followers_, [](const auto& w) { return w.expired(); });
  followers_.push_back(wake);
}

void EventStream::wakeAll() {
  std::erase_if(followers_, [](const auto& w) { return w.expired(); });
  for (const auto& w : followers_)
    if (auto t = w.lock()) t->cancel();
}

}  // namespace pxedust::http
