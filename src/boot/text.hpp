// Bounding the text the tracker keeps from events.
//
// File names, vendor classes and initiator names come from peers. The tracker keeps the first
// TrackerOptions::maxText bytes of each and replaces bytes that are not UTF-8 (RFC 3629 §4: no
// overlong forms, no surrogates, nothing above U+10FFFF) with '?', cutting only between
// characters, so memory per event is bounded and the JSON snapshot never fails to dump.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "boot/event.hpp"

namespace pxedust::boot {

std::string boundedText(std::string_view text, std::size_t maxBytes);

// Every text field of the event, through boundedText().
void boundTexts(Event& event, std::size_t maxBytes);

}  // namespace pxedust::boot
