// Limits doppel enforces on what enters the log, in one place. Each is checked at the entry
// point with a clear error (payload_rules.h for event payloads, ValidateStreamName for
// names) and listed in the README's "Limits" section.
#pragma once

#include <cstddef>

namespace doppel::schemas {

// Joints one robot may report or register; the twin keeps one slot per joint.
inline constexpr size_t kMaxJointsPerRobot = 256;
// Bytes of one name inside a payload (joint, frame, link, obstacle, fault code, operator).
inline constexpr size_t kMaxNameBytes = 256;
// Bytes of one free-text field (fault message, mode reason) and of a URDF.
inline constexpr size_t kMaxTextBytes = 4096;
inline constexpr size_t kMaxUrdfBytes = 1 << 20;
// Bytes of an event type name.
inline constexpr size_t kMaxEventTypeBytes = 128;
// Entries of a prediction's trajectory and limit list (2 s at 0.1 s is 21 samples).
inline constexpr size_t kMaxPredictionSamples = 10000;
// Command bounds that hold for any robot doppel can twin: a velocity command beyond these is
// not a command but a fault (and ODE asserts on such values). Each robot's own, tighter
// limits are applied by its twin (a command above them is predicted at the limit).
inline constexpr double kMaxCommandLinear = 50.0;   // m/s
inline constexpr double kMaxCommandAngular = 50.0;  // rad/s
inline constexpr double kMaxJointTarget = 1000.0;   // rad or m
// Positions a pose may report, in metres from the site origin.
inline constexpr double kMaxCoordinate = 1e6;

}  // namespace doppel::schemas
