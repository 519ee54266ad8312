-- AlterTable
ALTER TABLE "Container" ADD COLUMN     "keepUntil" TIMESTAMP(3);

