/** The alias a version is promoted to on the models page, and the one the feedback view fine-tunes. */
export const PRODUCTION = 'production';
