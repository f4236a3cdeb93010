// The campaign's parts, in the order they run.

import type {CampaignPart} from './case.js';
import {floodPart} from './flood.js';
import {forgedPart} from './forged.js';
import {fuzzPart} from './fuzz.js';
import {inputPart} from './input.js';
import {loadPart} from './load.js';

export const PARTS: readonly CampaignPart[] = [
  fuzzPart,
  floodPart,
  forgedPart,
  inputPart,
  loadPart,
];
