import { resolve } from 'node:path';
import { describeReadmeExamples } from '@x/test-utils';

describeReadmeExamples({ packageRoot: resolve(import.meta.dirname, '..'), minimum: 7 });
