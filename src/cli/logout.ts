/** `secryn logout [--profile NAME]`: forgets a saved profile (its token included). */
import { defineCommand } from 'citty';
import { removeProfile } from '../client/profile.ts';
import { clientArgs, profileName } from './client-common.ts';
import { commonArgs, print } from './common.ts';

export const logoutCommand = defineCommand({
  meta: {
    name: 'logout',
    description:
      'Forget a saved profile and its token (the key itself stays valid: revoke it to end it)',
  },
  args: { profile: clientArgs.profile, ...commonArgs },
  async run({ args }) {
    const name = profileName(args);
    const removed = removeProfile(name);
    print(removed ? `Profile "${name}" removed` : `No profile "${name}"`);
  },
});
