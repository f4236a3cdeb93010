// The campaign's parts, in the order they run.

import type {CampaignPart} from './case.js';
import {crashPart} from './crash.js';
import {fuzzPart} from './fuzz.js';

export const PARTS: readonly CampaignPart[] = [
  fuzzPart,
  crashPart,
];
