export default {
  description: '(not written yet)',
  async run(): Promise<void> {
    throw new Error('not written yet');
  },
};
