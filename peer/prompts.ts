import enquirer from 'enquirer';

/**
 * Asks for the code the server shows (the teacher's projector), without first showing the code
 * this program received: a person who only has to press Enter does not compare anything.
 */
export async function promptForServerCode(): Promise<string | undefined> {
  try {
    const answer = (await enquirer.prompt({
      type: 'input',
      name: 'code',
      message: 'First connection to this server. Type the code the server shows (like ABCD-EFGH-IJKL-MNOP)',
      stdout: process.stderr,
    })) as { code?: unknown };
    return typeof answer.code === 'string' && answer.code.trim() !== '' ? answer.code : undefined;
  } catch {
    return undefined; // Ctrl+C at the prompt
  }
}
