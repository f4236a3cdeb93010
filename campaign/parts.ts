// The campaign's parts, in the order they run: the quick ones first.

import type {CampaignPart} from './case.js';
import {crashPart} from './crash.js';
import {faultsPart} from './faults.js';
import {floodPart} from './flood.js';
import {forgedPart} from './forged.js';
import {fuzzPart} from './fuzz.js';
import {inputPart} from './input.js';
import {loadPart} from './load.js';
import {replayPart} from './replay.js';

export const PARTS: readonly CampaignPart[] = [
  fuzzPart,
  inputPart,
  forgedPart,
  replayPart,
  floodPart,
  faultsPart,
  crashPart,
  loadPart,
];
